"""What every lab shares: the QUICK switch, CS231n-style check lines, a running tally of them, figure
saving, and one check function per exercise. Each check takes the student's implementation, prints
lines such as

    dx error 3.1e-09 (expect < 1e-07): ok

and returns True when every line is ok. Every lab ends with ``summary()``: "n of m checks passed", and
as a script a non-zero exit status when any check failed. An exercise left unfinished in a student copy
(``python -m minitorch_cnn.lab.student``) raises NotImplementedError("exercise 2.2 (im2col_naive)"):
a check reports it as a failed line and the lab goes on; code that needs the missing piece stops the
lab at its summary, without a traceback. tests/labs/test_labs.py runs each check on a planted wrong
implementation too, to show that it can fail.
"""
import functools
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from minitorch_cnn.files import atomic_write
from minitorch_cnn.gradcheck import relative_error
from minitorch_cnn.kernels import reference

QUICK = os.environ.get("LABS_QUICK") == "1"          # CI: small data, few steps; everything still runs
# Figures go to an output folder that git ignores, so running a lab never rewrites a tracked file; the
# committed ones in docs/labs/figures come from a full run with LABS_FIGURES=docs/labs/figures.
FIGURES = Path(os.environ.get("LABS_FIGURES") or Path(__file__).resolve().parent / "output")
# Datasets are found by minitorch_cnn.data.load_dataset: $MINITORCH_DATA (the one documented place), the
# per-user cache (~/.cache/minitorch_cnn), Debian's /usr/share/datasets. LABS_DATA=generated makes lab 4
# use its generated digits even when a real dataset is there (the test of a machine without data).
LABS_DATA = os.environ.get("LABS_DATA", "")
TALLY = {"passed": 0, "failed": 0}
REPORTED = set()                                    # the unfinished exercises already reported


def _interactive():
    """True inside Jupyter or a Python prompt: no exits, figures displayed inline."""
    ipython = sys.modules.get("IPython")
    return hasattr(sys, "ps1") or bool(ipython and ipython.get_ipython() is not None)


def summary():
    """Print "n of m checks passed"; as a script, exit with status 1 when any check failed."""
    total = TALLY["passed"] + TALLY["failed"]
    print(f"\n{TALLY['passed']} of {total} checks passed" + ("" if not TALLY["failed"] else
                                                              f" ({TALLY['failed']} FAILED)"))
    if TALLY["failed"] and not _interactive():
        sys.exit(1)


def _unfinished(err):
    """The 'exercise 2.2 (im2col_naive)' a student copy's NotImplementedError names, else None."""
    text = str(err)
    return text if text.startswith("exercise ") else None


def _unwrapped(err):
    """The NotImplementedError an error carries: itself, or the cause of the SystemError that Numba's TBB layer
    raises when an exercise stub raises inside a parallel loop (lab 8's kernels); else the error itself."""
    inner = err.__cause__ or err.__context__ if isinstance(err, SystemError) else None
    return inner if isinstance(inner, NotImplementedError) else err


def _list_unreached():
    """Name the unfinished exercises of the running lab (its source's markers) that it never reached."""
    try:
        source = Path(sys.argv[0]).read_text(encoding="utf-8")
    except OSError:
        return
    left = [name for name in re.findall(r'NotImplementedError\("(exercise [^"]+)"\)', source)
            if name not in REPORTED]
    if left:
        print("not reached, also unfinished: " + ", ".join(dict.fromkeys(left)))


def _stop_at_unfinished(kind, err, tb):
    """sys.excepthook: an unfinished exercise that later code needs ends the lab at its summary."""
    inner = _unwrapped(err)
    if isinstance(inner, NotImplementedError) and _unfinished(inner):
        _count_unfinished(inner, ", and the rest of this lab uses it")
        print("(finish that exercise to see the rest of the lab)")
        _list_unreached()
        summary()
        sys.exit(1)
    sys.__excepthook__(kind, err, tb)


def _notebook_unfinished(shell, kind, err, tb, tb_offset=None):
    """In Jupyter: an unfinished exercise a cell needs prints one line instead of a traceback."""
    if _unfinished(err):
        _count_unfinished(err, ", and this cell uses it")
        return None
    return shell.showtraceback((kind, err, tb), tb_offset=tb_offset)


sys.excepthook = _stop_at_unfinished
if sys.modules.get("IPython") and sys.modules["IPython"].get_ipython() is not None:
    sys.modules["IPython"].get_ipython().set_custom_exc((NotImplementedError,), _notebook_unfinished)


def exercise_check(check):
    """Decorator: a check whose exercise is unfinished prints one failed line instead of a traceback."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except (NotImplementedError, SystemError) as err:
            if not isinstance(_unwrapped(err), NotImplementedError):
                raise
            _count_unfinished(_unwrapped(err))
            return False
    return run


def _count_unfinished(err, consequence=""):
    """One failed line for an exercise not written yet (re-raises any other NotImplementedError)."""
    if not _unfinished(err):
        raise err
    TALLY["failed"] += 1
    REPORTED.add(_unfinished(err))
    print(f"{_unfinished(err)}: not implemented yet{consequence}: FAIL")


def rel_error(a, b):
    """CS231n's relative error, the worst element of the library's ``gradcheck.relative_error``:
    max |a - b| / max(1e-8, |a| + |b|). A student's answer of the wrong shape is infinitely wrong
    (rather than broadcast into a small number)."""
    if np.shape(a) != np.shape(b):
        return np.inf
    return float(relative_error(a, b).max(initial=0.0))


def report(label, value, expect, ok):
    ok = bool(ok)
    TALLY["passed" if ok else "failed"] += 1
    print(f"{label} {value} (expect {expect}): {'ok' if ok else 'FAIL'}")
    return ok


def attempt(fn):
    """fn(), or None, with one failed line, when it needs an exercise not written yet: lets a lab use a
    student's function outside a check and still run on."""
    try:
        return fn()
    except NotImplementedError as err:
        _count_unfinished(err)
        return None


def check_close(label, got, want, tol=1e-7):
    """One check line: rel_error(got, want) < tol. ``got`` or ``want`` may be a function of no arguments
    (called here, so that an unfinished exercise in it is reported rather than stopping the lab)."""
    got, want = (attempt(v) if callable(v) else v for v in (got, want))
    if got is None or want is None:
        return False
    err = rel_error(got, want)
    return report(f"{label} error", f"{err:.1e}", f"< {tol:.0e}", err < tol)


def best_ms(fn, repeat=3, warmup=False):
    """The fastest of ``repeat`` calls of ``fn``, in ms; ``warmup`` first makes one untimed call
    (a Numba kernel compiles on its first call)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def save_figure(fig, name):
    """Write ``fig`` to FIGURES/name atomically (temporary file, then rename) and, in a notebook, show
    it inline (a bare Figure in a script shows nothing); returns the path."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    # The temporary file has no .png ending for matplotlib to read the format from: say it.
    atomic_write(FIGURES / name, lambda f: fig.savefig(f, format=Path(name).suffix[1:] or "png",
                                                       dpi=90, bbox_inches="tight"))
    print(f"figure: {FIGURES / name}")
    if _interactive():     # a Figure made without pyplot has no inline formatter: show its PNG bytes
        from IPython.display import Image, display
        display(Image(data=(FIGURES / name).read_bytes(), format="png"))
    return FIGURES / name


def _rng(seed=0):
    return np.random.default_rng(seed)


def _grad(fn, *arrays):
    """Gradients of sum(fn(*tensors) * R) for a fixed random R, by the framework's backward."""
    ts = [mt.Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    out = fn(*ts)
    weight = _rng(9).standard_normal(out.shape)
    (out * mt.Tensor(weight)).sum().backward()
    return weight, [t.grad for t in ts]


# ---------------------------------------------------------------- lab 1: autograd
@exercise_check
def check_function(function_class, reference_fn, label="dx"):
    """A Function's backward against finite differences (mt.gradcheck) and its forward against NumPy."""
    x = _rng(1).standard_normal((4, 5))
    ok = check_close(f"{label} forward", function_class()(mt.Tensor(x)).data, reference_fn(x))
    result = mt.gradcheck(lambda t: function_class()(t), [mt.Tensor(x, requires_grad=True)])
    return report(f"{label} error", f"{result.max_error:.1e}", "< 1e-07", result.max_error < 1e-7) and ok


# ---------------------------------------------------------------- lab 2: convolution
CONV_CASES = [((2, 3, 7, 7), (4, 3, 3, 3), 1, 1), ((1, 2, 8, 6), (3, 2, 3, 2), 2, 0)]


@exercise_check
def check_conv_forward(conv_fn):
    ok = True
    for xs, ws, stride, pad in CONV_CASES:
        r = _rng(2)
        x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
        want = F.conv2d(mt.Tensor(x), mt.Tensor(w), mt.Tensor(b), stride=stride, padding=pad).data
        ok &= check_close(f"conv out stride={stride} pad={pad}", conv_fn(x, w, b, stride, pad), want)
    return ok


@exercise_check
def check_im2col(im2col_fn):
    ok = True
    for xs, ws, stride, pad in CONV_CASES:
        x = _rng(3).standard_normal(xs)
        kh, kw = ws[2:]
        out_hw = ((xs[2] + 2 * pad - kh) // stride + 1, (xs[3] + 2 * pad - kw) // stride + 1)
        want = reference.im2col(x, (kh, kw), (stride, stride), (pad, pad), (1, 1), out_hw)
        ok &= check_close(f"cols stride={stride} pad={pad}", im2col_fn(x, kh, kw, stride, pad), want)
    return ok


@exercise_check
def check_conv_backward(backward_fn):
    xs, ws, stride, pad = CONV_CASES[0]
    r = _rng(4)
    x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
    dout, (dx, dw, db) = _grad(lambda a, c, d: F.conv2d(a, c, d, stride=stride, padding=pad), x, w, b)
    got = backward_fn(dout, x, w, stride, pad)
    ok = check_close("dx", got[0], dx)
    ok &= check_close("dw", got[1], dw)
    return check_close("db", got[2], db) and ok


# ---------------------------------------------------------------- lab 3: pooling, batch norm
@exercise_check
def check_max_pool_backward(backward_fn):
    x = _rng(5).standard_normal((2, 3, 6, 6))
    dout, (dx,) = _grad(lambda t: F.max_pool2d(t, 2), x)
    return check_close("max-pool dx", backward_fn(dout, x, 2), dx)


@exercise_check
def check_batch_norm(bn_fn):
    """bn_fn(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5) -> y,
    updating the running arrays in place while training."""
    r = _rng(6)
    x, gamma, beta = r.standard_normal((8, 3, 4, 4)) * 3 + 1, r.standard_normal(3), r.standard_normal(3)
    layer = nn.BatchNorm2d(3).double()
    layer.weight.data[:], layer.bias.data[:] = gamma, beta
    mean, var = np.zeros(3), np.ones(3)
    ok = check_close("train-mode y", bn_fn(x, gamma, beta, mean, var, True), layer(mt.Tensor(x)).data)
    ok &= check_close("running_mean", mean, layer.running_mean)
    ok &= check_close("running_var", var, layer.running_var)
    layer.eval()
    return check_close("eval-mode y", bn_fn(x, gamma, beta, mean, var, False), layer(mt.Tensor(x)).data) and ok


@exercise_check
def check_saturation(fraction_fn):
    x = _rng(7).standard_normal(1000) * 5
    return check_close("saturated fraction", fraction_fn(np.clip(x, 0, 6)), np.mean(x >= 6))


# ---------------------------------------------------------------- lab 4: LeNet-5
@exercise_check
def check_parameter_count(model, expected):
    n = sum(p.size for p in model.parameters())
    return report("parameter count", n, f"== {expected}", n == expected)


@exercise_check
def check_initial_loss(loss, num_classes=10):
    return report("initial loss", f"{loss:.3f}", f"ln {num_classes} = {np.log(num_classes):.3f} +- 0.15",
                  abs(loss - np.log(num_classes)) < 0.15)


# ---------------------------------------------------------------- lab 5: MobileNet
@exercise_check
def check_grouped_conv(grouped_fn):
    r = _rng(8)
    x, w = r.standard_normal((2, 6, 5, 5)), r.standard_normal((9, 2, 3, 3))
    want = F.conv2d(mt.Tensor(x), mt.Tensor(w), padding=1, groups=3).data
    return check_close("grouped conv out", grouped_fn(x, w, 3, 1), want)


@exercise_check
def check_mac_ratio(ratio_fn):
    ok = True
    for c_in, c_out, k in [(32, 64, 3), (128, 128, 3), (64, 256, 5)]:
        standard = nn.Conv2d(c_in, c_out, k, padding=k // 2)
        depthwise, pointwise = nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in), nn.Conv2d(c_in, c_out, 1)
        macs = [m.weight.size * 8 * 8 for m in (standard, depthwise, pointwise)]   # per output pixel x 64 pixels
        ok &= check_close(f"MAC ratio C={c_in} N={c_out} k={k}", ratio_fn(c_out, k), (macs[1] + macs[2]) / macs[0])
    return ok


# ---------------------------------------------------------------- lab 6: ResNet
@exercise_check
def check_basic_block(block_class):
    from zoo.models.resnet import BasicBlock
    ok = True
    for c_in, c_out, stride in [(8, 8, 1), (8, 16, 2)]:
        mt.manual_seed(0)
        mine, ref = block_class(c_in, c_out, stride).double(), BasicBlock(c_in, c_out, stride).double()
        try:
            mine.load_state_dict(ref.state_dict())
        except ValueError as err:
            print(err)
            return report(f"block {c_in}->{c_out} state_dict", "mismatch", "zoo's names and shapes", False)
        x = mt.Tensor(_rng(10).standard_normal((2, c_in, 8, 8)))
        ok &= check_close(f"block {c_in}->{c_out} stride {stride} out", mine.eval()(x).data, ref.eval()(x).data)
    return ok


@exercise_check
def check_identity(block, x):
    y = block.eval()(mt.Tensor(x)).data
    return check_close("zero-gamma block vs relu(x)", y, np.maximum(x, 0))


# ---------------------------------------------------------------- lab 7: Inception
@exercise_check
def check_inception_channels(channels_fn):
    from zoo.models.googlenet import INCEPTION, Inception
    ok = True
    for name, widths in INCEPTION.items():
        real = Inception(8, *widths).out_channels
        ok &= report(f"inception {name} channels", channels_fn(*widths), f"== {real}", channels_fn(*widths) == real)
    return ok


@exercise_check
def check_aux_loss(loss_fn):
    from zoo import googlenet_loss
    r = _rng(11)
    outs = tuple(mt.Tensor(r.standard_normal((4, 10))) for _ in range(3))
    y = np.array([1, 2, 3, 4])
    ok = True
    for main_weight in (1.0, 0.7):
        want = googlenet_loss(outs, y, 0.3, main_weight).item()
        ok &= check_close(f"loss main={main_weight} aux=0.3", loss_fn(outs, y, 0.3, main_weight).item(), want)
    return ok


# ---------------------------------------------------------------- lab 8: kernels
@exercise_check
def check_relu6_kernel(kernel_fn):
    x = (_rng(12).standard_normal(1000) * 5).astype(np.float32)
    y, mask = np.empty_like(x), np.empty(x.shape, np.bool_)
    kernel_fn(x, y, mask)
    want_y, want_mask = reference.clamp_forward(x, 6.0)
    ok = check_close("relu6 y", y, want_y)
    return report("relu6 mask mismatches", int((mask != want_mask).sum()), "== 0", (mask == want_mask).all()) and ok


@exercise_check
def check_im2col_kernel(kernel_fn):
    x = _rng(13).standard_normal((2, 3, 6, 5)).astype(np.float32)
    kh, kw, s, p = 3, 3, 2, 1
    ho, wo = (6 + 2 * p - kh) // s + 1, (5 + 2 * p - kw) // s + 1
    cols = np.full((3 * kh * kw, 2 * ho * wo), np.nan, np.float32)
    kernel_fn(x, cols, kh, kw, s, p, ho, wo)
    return check_close("im2col kernel cols", cols, reference.im2col(x, (kh, kw), (s, s), (p, p), (1, 1), (ho, wo)))
