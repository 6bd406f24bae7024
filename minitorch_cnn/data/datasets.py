"""Finding, downloading, verifying and loading datasets: ``load_dataset``.

Where we look, in order (the first folder holding a complete split wins):

1. the ``data_dir`` argument,
2. the folder(s) in the ``MINITORCH_DATA`` environment variable (``os.pathsep``-separated),
3. the per-user cache, ``$XDG_CACHE_HOME/minitorch_cnn`` or ``~/.cache/minitorch_cnn``,
4. system folders: Debian's ``/usr/share/datasets`` for Fashion-MNIST.

Inside each of these a dataset may sit in its own subfolder (``mnist/``,
``fashion-mnist/``, ``cifar10/``, torchvision's ``MNIST/raw/``), in the
official CIFAR folders (``cifar-10-batches-bin/``, ``cifar-10-batches-py/``,
directly or inside ``cifar10/``), or directly in the folder. Only when no
candidate has the files do we download, into the first writable one of 1-3.
"""
import os
from pathlib import Path

import numpy as np

from .cifar import parse_cifar_binary, parse_cifar_pickle
from .download import digest, download_file, extract_members, verify_checksum, verify_file
from .errors import DataError, DataFormatError, DatasetNotFoundError, DownloadError
from .idx import load_idx
from .registry import (
    CIFAR10,
    CIFAR_ARCHIVES,
    CIFAR_BIN_FOLDER,
    CIFAR_PY_FOLDER,
    get_info,
)

ENV_VAR = "MINITORCH_DATA"
SYSTEM_ROOTS = {"fashion-mnist": (Path("/usr/share/datasets"),)}
SPLITS = ("train", "test")
VERIFY_MODES = ("checksum", "structure")
MNIST_PAD = 2  # 28x28 -> 32x32, so every dataset feeds the same 32x32 networks


class Dataset:
    """An in-memory image-classification dataset.

    ``images`` stay uint8 (N, C, 32, 32): 4x smaller than float32, and
    ``DataLoader`` converts and normalises one batch at a time.
    ``labels`` are int64 (N,). ``mean``/``std`` are per channel, for pixels in [0, 1].
    """

    def __init__(self, images, labels, classes, mean, std, name="", split=""):
        images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images of shape (N, C, H, W), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"expected {len(images)} labels, got shape {labels.shape}")
        if not len(mean) == len(std) == images.shape[1]:
            raise ValueError(f"expected {images.shape[1]} mean/std values, got {len(mean)}/{len(std)}")
        self.images, self.labels = images, labels
        self.classes, self.mean, self.std = tuple(classes), tuple(mean), tuple(std)
        self.name, self.split = name, split

    @property
    def in_channels(self):
        return self.images.shape[1]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self):
        return (f"Dataset({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"images={self.images.shape}, classes={len(self.classes)})")

    def subset(self, indices):
        """A new Dataset holding the samples at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return Dataset(self.images[indices], self.labels[indices], self.classes,
                       self.mean, self.std, self.name, self.split)

    def limit(self, n, stratified=False):
        """The first ``n`` samples, or with ``stratified=True`` ``n`` samples balanced over classes.

        Stratified: the k-th sample of every class comes before the (k+1)-th
        sample of any class, so the counts per class differ by at most one
        (while classes last). The chosen samples keep their original order.
        """
        n = min(int(n), len(self))
        if n < 0:
            raise ValueError(f"limit must be >= 0, got {n}")
        if not stratified:
            return self.subset(np.arange(n))
        order = np.argsort(self.labels, kind="stable")          # grouped by class, original order inside
        sorted_labels = self.labels[order]
        first_of_class = np.searchsorted(sorted_labels, sorted_labels, side="left")
        rank = np.empty(len(self), dtype=np.int64)
        rank[order] = np.arange(len(self)) - first_of_class       # position of each sample within its class
        chosen = np.lexsort((np.arange(len(self)), rank))[:n]     # by rank, then by original index
        return self.subset(np.sort(chosen))


# ------------------------------------------------------------------- where to look

def cache_dir():
    """The per-user cache folder: $XDG_CACHE_HOME/minitorch_cnn, else ~/.cache/minitorch_cnn."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "minitorch_cnn"


def data_roots(data_dir=None):
    """The user-controlled data folders in priority order (also where downloads may go)."""
    roots = [Path(data_dir).expanduser()] if data_dir is not None else []
    roots += [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    roots.append(cache_dir())
    return _unique(roots)


def candidate_folders(info, roots):
    """Every folder that may hold ``info``'s files, most specific first within each root."""
    folders = []
    for root in roots:
        for base in [root / sub for sub in info.subfolders] + [root]:
            if info is CIFAR10:
                folders += [base / CIFAR_BIN_FOLDER, base / CIFAR_PY_FOLDER]
            folders.append(base)
    return _unique(folders)


def _unique(paths):
    return list(dict.fromkeys(paths))


def _split_files(info, folder, split):
    """The split's files in ``folder`` as ``(kind, paths)``, or None if any is missing."""
    names = info.split_files[split]
    if info is CIFAR10:
        for suffix, kind in ((".bin", "bin"), ("", "py")):  # binary first: no pickle involved
            paths = [folder / (name + suffix) for name in names]
            if all(p.is_file() for p in paths):
                return kind, paths
        return None
    paths = []
    for base in names:  # the official .gz, or an uncompressed copy (torchvision keeps both)
        path = next((folder / f for f in (base + ".gz", base) if (folder / f).is_file()), None)
        if path is None:
            return None
        paths.append(path)
    return "idx", paths


def locate(info, split, folders):
    """The first folder with the complete split: ``(kind, paths)``, or None."""
    for folder in folders:
        found = _split_files(info, folder, split)
        if found:
            return found
    return None


# ------------------------------------------------------------------- reading

def _check_labels(labels, n_images, num_classes, path):
    if len(labels) != n_images:
        raise DataFormatError(f"{path}: expected {n_images} labels (one per image), found {len(labels)}")
    if len(labels) and labels.max() >= num_classes:
        raise DataFormatError(f"{path}: expected label values 0..{num_classes - 1}, found {int(labels.max())}")


def _read_idx_pair(info, paths, verify):
    """Read (images, labels) IDX files, verify them, and pad images to (N, 1, 32, 32)."""
    arrays = []
    for path, ndim in zip(paths, (3, 1)):
        raw = path.read_bytes()     # compressed: ~10 MB at most for an official file
        checksum = info.checksums[path.name.removesuffix(".gz")] if verify == "checksum" else None
        if checksum is not None and digest(raw, checksum.algo) in checksum.file:
            checksum = None         # the official file itself: checked before it is decompressed
        # Streamed, and bounded by what the header may declare: a gzip "bomb" stops at its header.
        array, content = load_idx(path, raw, ndim)
        if checksum is not None:    # a re-gzipped or uncompressed copy: its content's digest must match
            verify_checksum(path, raw, checksum, content)
        arrays.append(array)
    images, labels = arrays
    if images.shape[1:] != (28, 28):
        raise DataFormatError(f"{paths[0]}: expected 28x28 images, found {images.shape[1:]}")
    _check_labels(labels, len(images), len(info.classes), paths[1])
    p = MNIST_PAD
    padded = np.zeros((len(images), 1, 28 + 2 * p, 28 + 2 * p), dtype=np.uint8)
    padded[:, 0, p:-p, p:-p] = images
    return padded, labels


def _read_cifar(info, kind, paths, verify):
    """Read and concatenate CIFAR-10 batch files of either official version."""
    parse = parse_cifar_binary if kind == "bin" else parse_cifar_pickle
    images, labels = [], []
    for path in paths:
        raw = path.read_bytes()
        if verify == "checksum":  # before unpickling: an official file is also a harmless one
            verify_checksum(path, raw, info.checksums[path.name])
        x, y = parse(raw, path)
        _check_labels(y, len(x), len(info.classes), path)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


# ------------------------------------------------------------------- downloading

def _url(mirror, name):
    return mirror.rstrip("/") + "/" + name


def _first_writable(roots):
    for root in roots:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK):
            return root
    return None


def _download(info, split, roots, mirrors, verify):
    """Download the split's files into the first writable root; raise DataError on failure."""
    root = _first_writable(roots)
    if root is None:
        raise DownloadError("no writable folder to download into among: " + ", ".join(map(str, roots)))
    dest = root / info.subfolders[0]
    if info is CIFAR10:
        return _download_cifar(dest, mirrors, verify)
    for base in info.split_files[split]:
        target = dest / (base + ".gz")
        if not target.exists():
            checksum = info.checksums[base] if verify == "checksum" else None
            download_file([_url(m, target.name) for m in mirrors], target, checksum)


def _download_cifar(dest, mirrors, verify):
    """Extract the batches of an official CIFAR-10 archive (binary version first): one already in ``dest``
    (placed there by the user, as the not-found message suggests) or else one downloaded.

    Only an archive this call downloaded is deleted afterwards: a user's own copy is never touched, even
    when it turns out damaged (the error says so), and is never downloaded over.
    """
    failures = []
    for archive in CIFAR_ARCHIVES:
        path = dest / archive.name
        names = [n + archive.suffix for split in SPLITS for n in CIFAR10.split_files[split]]
        checksum = archive.checksum if verify == "checksum" else None
        downloaded = not path.exists()
        try:
            if downloaded:
                download_file([_url(m, archive.name) for m in mirrors], path, checksum)
            elif checksum is not None:
                verify_file(path, checksum)     # before extracting: a bad archive is never decompressed
            extract_members(path, dest / archive.folder, [f"{archive.folder}/{n}" for n in names + [archive.meta]])
            return
        except DataError as err:
            failures.append(str(err) if downloaded else f"{path} (your copy, kept as it is): {err}")
        finally:
            if downloaded:
                path.unlink(missing_ok=True)  # the batches are extracted; the archive is no longer needed
    raise DownloadError("\n".join(failures))


def _needed_files(info, split):
    names = info.split_files[split]
    if info is CIFAR10:
        return (f"{', '.join(n + '.bin' for n in names)} (binary version, folder {CIFAR_BIN_FOLDER}/) "
                f"or {', '.join(names)} (python version, folder {CIFAR_PY_FOLDER}/)")
    return ", ".join(n + ".gz" for n in names)


def _not_found_message(info, split, folders, roots, download, failure):
    dest = roots[0] / info.subfolders[0]
    if info is CIFAR10:
        dest = dest / CIFAR_BIN_FOLDER
    lines = [f"dataset {info.name!r} ({split} split): files not found.",
             f"Missing: {_needed_files(info, split)}",
             "Looked in (none of these folders holds all of them):"]
    lines += [f"  {f}" for f in folders]
    if failure is not None:
        lines.append(f"Download failed:\n{failure}")
    elif not download:
        lines.append("download=False, so nothing was downloaded.")
    if info is CIFAR10:
        source = " or ".join(_url(info.mirrors[0], a.name) for a in CIFAR_ARCHIVES) + f" (extract into {dest.parent})"
    else:
        source = ", ".join(info.mirrors)
    lines.append(f"Put the files in {dest} (or pass data_dir=DIR or set {ENV_VAR}=DIR, "
                 f"with the files in DIR/{info.subfolders[0]}/). Official source: {source}")
    return "\n".join(lines)


# ------------------------------------------------------------------- the entry point

def load_dataset(name, split="train", data_dir=None, download=True, verify="checksum",
                 limit=None, stratified=False, mirrors=None):
    """Load ``name`` ('mnist', 'fashion-mnist' or 'cifar10') as a uint8 ``Dataset``.

    ``verify='checksum'`` (the default) checks every file against the
    official checksums as well as its structure; ``verify='structure'`` only
    checks the structure (for generated test files). ``limit`` keeps the first
    ``limit`` samples (class-balanced with ``stratified=True``). ``mirrors``
    replaces the dataset's list of download base URLs.
    """
    info = get_info(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if verify not in VERIFY_MODES:
        raise ValueError(f"unknown verify mode {verify!r}; expected one of {', '.join(VERIFY_MODES)}")
    roots = data_roots(data_dir)
    folders = candidate_folders(info, roots + list(SYSTEM_ROOTS.get(info.name, ())))
    found = locate(info, split, folders)
    if found is None:
        failure = None
        if download:
            try:
                _download(info, split, roots, tuple(mirrors or info.mirrors), verify)
            except DataError as err:
                failure = err
            found = locate(info, split, folders)
        if found is None:
            raise DatasetNotFoundError(_not_found_message(info, split, folders, roots, download, failure))
    kind, paths = found
    if kind == "idx":
        images, labels = _read_idx_pair(info, paths, verify)
    else:
        images, labels = _read_cifar(info, kind, paths, verify)
    dataset = Dataset(images, labels, info.classes, info.mean, info.std, info.name, split)
    return dataset if limit is None else dataset.limit(limit, stratified)
