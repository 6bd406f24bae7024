"""What the strict CuPy stand-in (strict_cupy.py) saw cross the device boundary, each with its call site.

Kinds of event, each what a real GPU would pay for:

    "sync"    a device -> host transfer (``.get()``, ``asnumpy``, ``.item()``, ``float(dev)``, ``bool(dev)``,
              printing): the host waits for every queued kernel, so a training step should have exactly one
    "h2d"     a host -> device copy (``cupy.asarray(host)``, a host index array, ``dev[:] = host``)
    "launch"  a RawModule kernel launch (one of the project's CUDA kernels)
    "op"      one of CuPy's own kernels: a ufunc, a reduction, a fill, a copy that is not a view, a GEMM
              (views, ``empty`` and shape queries launch nothing and are not counted)
    "hidden"  a copy CuPy makes inside ``cupy.matmul`` for ndim > 2: an operand that is not C-contiguous is
              copied first, and a non-C-contiguous ``out`` is computed in a temporary and copied back
    "host_to_kernel"  a host ndarray handed to a kernel (CuPy raises; the stand-in records, then raises)

The call site is the first frame outside the stand-in and NumPy: the library (or test) line responsible.
``LEDGER.mark()`` starts a new step; ``per_step()`` gives each step's counts.
"""
import collections
import os
import sys

_SKIP = (os.path.dirname(__file__), os.path.dirname(sys.modules["numpy"].__file__),
         # the library's thin device helpers (to_numpy, send, launch shapes): their caller is the useful line
         os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "minitorch_cnn", "device.py"),
         os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "minitorch_cnn", "kernels",
                      "cuda", "launch.py"))
KINDS = ("sync", "h2d", "launch", "op", "hidden", "host_to_kernel")


def call_site(skip=2):
    """'path/to/file.py:LINE' of the innermost frame outside tests/support and NumPy."""
    frame = sys._getframe(skip)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
    if frame is None:
        return "?"
    name = frame.f_code.co_filename
    for root in sys.path:   # shortest readable form: relative to the repository when it is under it
        if root and name.startswith(root.rstrip("/") + "/") and "site-packages" not in root:
            name = name[len(root.rstrip("/")) + 1:]
            break
    return f"{name}:{frame.f_lineno}"


class Ledger:
    """Events as (kind, what, call site, bytes); ``steps`` holds the index where each step began."""

    def __init__(self):
        self.events, self.steps = [], []

    def record(self, kind, what, nbytes=0):
        self.events.append((kind, what, call_site(3), int(nbytes)))

    def reset(self):
        self.events.clear()
        self.steps.clear()

    def mark(self):
        """A step begins here (the events from now on count toward it)."""
        self.steps.append(len(self.events))

    def count(self, kind, events=None):
        return sum(1 for e in (self.events if events is None else events) if e[0] == kind)

    def step_events(self):
        """The events of each marked step (the last runs to the end)."""
        bounds = self.steps + [len(self.events)]
        return [self.events[a:b] for a, b in zip(bounds, bounds[1:])]

    def per_step(self):
        """[{kind: count, 'hidden_bytes': ...}] for each marked step."""
        rows = []
        for events in self.step_events():
            row = {k: self.count(k, events) for k in KINDS}
            row["launches"] = row["launch"] + row["op"] + row["hidden"]   # everything the GPU would run
            row["hidden_bytes"] = sum(e[3] for e in events if e[0] == "hidden")
            rows.append(row)
        return rows

    def sites(self, kind, events=None):
        """{call site: count} of one kind of event, most frequent first."""
        found = collections.Counter(e[2] for e in (self.events if events is None else events) if e[0] == kind)
        return dict(found.most_common())


LEDGER = Ledger()


def matmul_copies(operands, out):
    """Record the copies cupy.matmul makes for these host buffers (the device arrays' memory), as CuPy does
    for ndim > 2: it hands cuBLAS's strided-batched GEMM C-contiguous operands only, and computes into a
    temporary when ``out`` is not C-contiguous. 2-D and 1-D products go to plain GEMM with transpose
    flags and copy nothing."""
    if max(a.ndim for a in operands) <= 2:
        return
    for i, a in enumerate(operands):
        if a.ndim and not a.flags.c_contiguous:
            LEDGER.record("hidden", f"matmul operand {i} {a.shape} strides {a.strides} made contiguous", a.nbytes)
    if out is not None and not out.flags.c_contiguous:
        LEDGER.record("hidden", f"matmul out {out.shape} not C-contiguous: computed in a temporary", out.nbytes)
