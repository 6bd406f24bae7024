"""DataLoader: shuffled, augmented, normalised float32 batches, prepared in the background.

Reproducibility is the design constraint here. Everything random about epoch
``e`` (the order of the samples, and each batch's crops and flips) comes from
generators seeded with ``(seed, e)`` only, never from a generator that lives
across epochs. So a run that stops after epoch 0 and resumes at epoch 1 (with
``set_epoch(1)``) sees exactly the batches an uninterrupted run sees.
"""
import queue
import threading

import numpy as np

CROP_PADDING = 4
_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1  # keep the two random streams of an epoch apart


# ----------------------------------------------------------------------- per-batch transforms

def normalise(images, mean, std):
    """uint8 (B, C, H, W) -> float32 ``(images / 255 - mean) / std``, per channel."""
    mean = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
    # Fold the three operations into one multiply-add, computed in float32.
    scale = (1.0 / (255.0 * std)).astype(np.float32)
    shift = (-mean / std).astype(np.float32)
    x = images.astype(np.float32)
    x *= scale
    x += shift
    return x


def crop_flip(images, top, left, flip, padding=CROP_PADDING):
    """Zero-pad every image by ``padding``, cut the HxW window at (top, left), mirror if ``flip``.

    ``top``, ``left`` (ints in [0, 2*padding]) and ``flip`` (bools) have one
    entry per image. Vectorised, no loop over images: ``sliding_window_view``
    presents every possible HxW window of the padded images as a view (no
    copy), shape (B, C, 2p+1, 2p+1, H, W); one fancy-indexing step then picks
    window (top[i], left[i]) for each image i.
    """
    b, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
    crops = windows[np.arange(b), :, np.asarray(top), np.asarray(left)]   # (B, C, H, W)
    return np.where(np.asarray(flip)[:, None, None, None], crops[..., ::-1], crops)


def random_crop_flip(images, rng, padding=CROP_PADDING):
    """The standard CIFAR-10 augmentation: random crop with zero padding, random horizontal flip."""
    n = len(images)
    top = rng.integers(0, 2 * padding + 1, size=n)
    left = rng.integers(0, 2 * padding + 1, size=n)
    flip = rng.random(n) < 0.5
    return crop_flip(images, top, left, flip, padding)


# ----------------------------------------------------------------------- background prefetch

def prefetch(iterable, depth=2):
    """Yield the items of ``iterable``, computing up to ``depth`` of them ahead in a daemon thread.

    The training step (mostly GPU or BLAS work, which releases the GIL) then
    overlaps with indexing and normalising the next batch. An exception in the
    worker is re-raised here, in the consumer. If the consumer stops early
    (``break``, or the generator is garbage-collected), the ``finally`` block
    tells the worker to stop and waits for it, so no thread is left running.
    """
    slots = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message):
        # Block while the queue is full, but notice promptly when the consumer has gone.
        while not stop.is_set():
            try:
                slots.put(message, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work():
        iterator = iter(iterable)
        try:
            for item in iterator:
                if not put(("item", item)):
                    return
            put(("done", None))
        except Exception as err:  # noqa: BLE001 - whatever fails must reach the consumer
            put(("error", err))
        finally:
            getattr(iterator, "close", lambda: None)()

    thread = threading.Thread(target=work, name="DataLoader-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = slots.get()
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield payload
    finally:
        stop.set()
        thread.join(timeout=10)


# ----------------------------------------------------------------------- the loader

class DataLoader:
    """Iterate over a ``Dataset`` in batches ``(x float32 (B, C, H, W), y int64 (B,))``.

    - ``shuffle``: a new permutation each epoch, a function of ``(seed, epoch)`` only.
    - ``augment``: True for random crop (padding 4) + horizontal flip (the
      CIFAR-10 recipe; flips make no sense for digits), or a callable
      ``f(uint8_images, rng) -> uint8_images``; applied to uint8 images before
      normalisation, with an rng seeded by ``(seed, epoch, batch index)``.
    - ``drop_last``: skip a final batch smaller than ``batch_size``.
    - ``prefetch``: prepare the next batch in a background thread.

    Each ``iter(loader)`` runs epoch ``loader.epoch`` and then advances it by
    one; ``set_epoch(e)`` chooses the epoch explicitly (e.g. when resuming).
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False,
                 augment=False, prefetch=True):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0 (it seeds numpy's SeedSequence), got {seed}")
        self.dataset = dataset
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.shuffle, self.drop_last, self.prefetch = shuffle, drop_last, prefetch
        self.augment = random_crop_flip if augment is True else (augment or None)
        self.epoch = 0

    def __len__(self):
        n, b = len(self.dataset.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def order(self, epoch):
        """The sample indices of ``epoch``, in the order they are served."""
        n = len(self.dataset.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_STREAM]).permutation(n)

    def make_batch(self, indices, epoch, batch_index):
        """Gather, augment (uint8) and normalise (float32) one batch."""
        images = self.dataset.images[indices]
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, _AUGMENT_STREAM, batch_index])
            images = self.augment(images, rng)
        x = normalise(images, self.dataset.mean, self.dataset.std)
        return x, np.asarray(self.dataset.labels[indices], dtype=np.int64)

    def _batches(self, epoch):
        order = self.order(epoch)
        for i in range(len(self)):
            yield self.make_batch(order[i * self.batch_size:(i + 1) * self.batch_size], epoch, i)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        batches = self._batches(epoch)
        return prefetch(batches) if self.prefetch else batches
