"""Checksums and downloads: the second layer of verification.

Structure checks (idx.py, cifar.py) tell us a file is *well-formed*; the
checksums here tell us it is *the official file*. A known file whose checksum
does not match is always an error, never silently used.

Downloads use only ``urllib``. Each file is streamed through
``files.atomic_write``: into a temporary file in the destination folder,
renamed into place only after its checksum matches (the checksum is checked
inside the write callback, so a mismatch raises before the rename), so an
interrupted or corrupted download never leaves a half-written file under the
real name and no temporary file behind.
"""
import hashlib
import http.client
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..files import atomic_write, atomic_write_bytes
from .errors import ChecksumError, DataFormatError, DownloadError

CHUNK = 1 << 20
TIMEOUT_S = 30
USER_AGENT = "minitorch_cnn-data/1.0 (urllib)"  # some mirrors refuse urllib's default agent


@dataclass(frozen=True)
class Checksum:
    """The official digests of one file.

    ``file`` holds digests of the bytes on disk; ``content`` holds digests of
    the decompressed content. Accepting the content digest lets a re-gzipped
    copy with identical data pass (Debian re-gzipped Fashion-MNIST), and an
    uncompressed copy too.
    """

    algo: str
    file: tuple = ()
    content: tuple = ()


def digest(data, algo):
    return hashlib.new(algo, data).hexdigest()


def verify_checksum(path, raw, checksum, content=None):
    """Raise ``ChecksumError`` unless ``raw`` (the bytes of ``path``) is an official file.

    ``content`` is the decompressed data, for files whose ``checksum.content``
    digests may match instead (re-gzipped or uncompressed copies).
    """
    got_file = digest(raw, checksum.algo)
    if got_file in checksum.file:
        return
    lines = [f"{path}: {checksum.algo} checksum does not match the official file."]
    if checksum.file:
        lines.append(f"  expected (file):    {' or '.join(checksum.file)}")
    lines.append(f"  found (file):       {got_file}")
    if checksum.content and content is not None:
        got_content = got_file if content is raw else digest(content, checksum.algo)
        if got_content in checksum.content:
            return
        lines.append(f"  expected (content): {' or '.join(checksum.content)}")
        lines.append(f"  found (content):    {got_content}")
    lines.append(
        "The file is corrupted, truncated or not the official data. Delete it so it is "
        "downloaded again, or pass verify='structure' to use it without the checksum check."
    )
    raise ChecksumError("\n".join(lines))


def file_digest(path, algo):
    """The ``algo`` digest of the file at ``path``, read in chunks (a CIFAR archive is 170 MB)."""
    hasher = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_file(path, checksum):
    """``verify_checksum`` for a file's bytes on disk (its ``file`` digests), streamed."""
    got = file_digest(path, checksum.algo)
    if got not in checksum.file:
        raise ChecksumError(f"{path}: {checksum.algo} checksum does not match the official file "
                            f"(expected {' or '.join(checksum.file)}, found {got}); delete it so it is "
                            "downloaded again")


def download_file(urls, dest, checksum=None, desc=None):
    """Fetch ``dest`` from the first of ``urls`` that works and matches ``checksum``.

    ``checksum`` is a ``Checksum`` of the downloaded bytes (its ``file``
    digests), or None to skip the check (used with verify='structure').
    A mirror that fails or serves the wrong bytes is skipped for the next one;
    if all fail, ``DownloadError`` lists every URL with its reason.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, dest, checksum, desc or dest.name)
            return dest
        # URLError/HTTPError/timeouts are OSErrors; ValueError: malformed URL; then bad bytes.
        except (OSError, ValueError, http.client.HTTPException, ChecksumError) as err:
            failures.append(f"  {url}: {err}")
    raise DownloadError(f"could not download {dest.name} into {dest.parent}; tried:\n" + "\n".join(failures))


def _fetch_verified(url, dest, checksum, desc):
    """Stream ``url`` into a temporary file beside ``dest``; rename it into place if it verifies.

    The download streams in chunks (a CIFAR archive is 170 MB), so it goes through ``atomic_write``'s
    callback rather than ``atomic_write_bytes``; a checksum mismatch raised inside the callback
    leaves ``dest`` as it was and removes the partial file.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})

    def stream_and_verify(out):
        hasher = hashlib.new(checksum.algo) if checksum else None
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=desc, disable=None, leave=False) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    if hasher:
                        hasher.update(chunk)
                    bar.update(len(chunk))
        if hasher and hasher.hexdigest() not in checksum.file:
            raise ChecksumError(
                f"{checksum.algo} mismatch: expected {' or '.join(checksum.file)}, got {hasher.hexdigest()}"
            )

    atomic_write(dest, stream_and_verify)


def extract_members(archive, dest_dir, members):
    """Extract the regular files ``members`` (paths inside ``archive``) into ``dest_dir``.

    We read each member's bytes ourselves rather than calling ``extractall``:
    a path inside an archive is never used to build a path on disk, so a
    hostile archive cannot write outside ``dest_dir`` ("tar slip").
    Each file is written atomically (``files.atomic_write_bytes``), like downloads.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    wanted = {m: Path(m).name for m in members}
    found = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                if info.name in wanted and info.isfile():
                    atomic_write_bytes(dest_dir / wanted[info.name], tar.extractfile(info).read())
                    found.add(info.name)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataFormatError(f"{archive}: could not read the tar.gz archive ({err})") from err
    missing = sorted(set(wanted) - found)
    if missing:
        raise DataFormatError(f"{archive}: expected the archive to contain {missing}, they are missing")
