"""``Tensor``: an array plus what autograd needs (``grad``, ``requires_grad``, ``creator``).

Every operator here is a thin call into a ``Function`` from ``functional``; the
math (forward next to backward) lives there, not here.
"""
import numbers

import numpy as np

from . import autograd
from .config import Config
from .device import DEFAULT_DTYPE, device, device_of, get_array_module, is_array, to_numpy

NUMERIC_KINDS = "biuf"   # bool, int, unsigned, float: what the operations and their gradients handle


def _not_numbers(arr, data=None):
    got = type(data).__name__ if data is not None and arr.dtype.kind == "O" else f"an array of {arr.dtype}"
    return TypeError(f"Tensor: expected numbers (bool, int or float data), got {got}"
                     + (" (complex numbers are not supported)" if arr.dtype.kind == "c" else ""))


def _as_array(data, dtype=None, where=None):
    """Turn Python numbers, lists and arrays into an array on device ``where`` (default: the default device).

    Host data (numbers, lists, NumPy arrays) goes to ``where``; a GPU array stays on its GPU unless
    ``where`` is given. Python floats and lists become float32 (the default dtype); arrays and NumPy
    scalars keep their dtype, so float64 inputs stay float64 for gradient checks.
    """
    if is_array(data):   # first, and with no device look-up for a host array on the CPU: the common case
        if data.dtype.kind not in NUMERIC_KINDS:
            raise _not_numbers(data)
        if where is not None or (isinstance(data, np.ndarray) and Config.device.is_gpu):
            data = (Config.device if where is None else device(where)).send(data)
        return data if dtype is None else data.astype(dtype, copy=False)
    target = Config.device if where is None else device(where)
    try:
        arr = np.asarray(data)
    except ValueError as err:    # ragged nested lists
        raise TypeError(f"Tensor: expected a number, a (nested) list of numbers or an array, got {err}") from None
    if arr.dtype.kind not in NUMERIC_KINDS:
        raise _not_numbers(arr, data)
    if dtype is None and arr.dtype.kind == "f" and not isinstance(data, np.generic):
        dtype = DEFAULT_DTYPE
    return target.send(arr.astype(dtype, copy=False) if dtype is not None else arr)


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``data`` is the raw array (NumPy or CuPy); ``grad`` is None or an array of
    the same shape; ``creator`` is the Function that produced this tensor
    (None for leaves such as inputs and parameters). ``Tensor(x)`` puts host data
    on the default device (``mt.using_device``), ``Tensor(x, device="cuda")`` on the one named.
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and self.data.dtype.kind != "f":
            # Checked here, where the flag is set, not in every operation (the hot path): a gradient of an
            # integer or bool tensor would be truncated to integers (0.5 * grad -> 0), as PyTorch also refuses.
            raise TypeError(f"only floating-point tensors can require grad: expected a float dtype, got "
                            f"{self.data.dtype} (pass dtype=np.float32, or data with a decimal point)")
        self.creator = None
        self.output_index = 0
        self.retains_grad = False

    @classmethod
    def _from_array(cls, array, requires_grad):
        """A Tensor around an array a Function just produced, left where it is: no conversion or checks
        (the hot path)."""
        if not is_array(array):   # a NumPy scalar, from a reduction over every axis: stays on the host
            array = np.asarray(array)
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t.creator, t.output_index, t.retains_grad = (
            array, None, requires_grad, None, 0, False)
        return t

    # ---- array-like properties -------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self.creator is None)
    device = property(lambda self: device_of(self.data), doc="The Device this tensor's data lives on.")

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(to_numpy(self.data), separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}{extra})"

    def numpy(self):
        """The data as a NumPy array: the array itself on the CPU, a host copy from the GPU."""
        return to_numpy(self.data)

    def item(self):
        return self.data.item()

    def detach(self):
        """The same data, cut off from the graph (on the same device)."""
        return Tensor._from_array(self.data, False)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (for inspecting a layer)."""
        self.retains_grad = True
        return self

    def astype(self, dtype):
        """A converted copy; it keeps ``requires_grad`` only as a floating tensor (see ``__init__``)."""
        data = self.data.astype(dtype)
        return Tensor._from_array(data, self.requires_grad and data.dtype.kind == "f")

    def to(self, spec):
        """This tensor on device ``spec`` ("cpu", "cuda", "cuda:N", "cuda-emulator" or a Device): a new
        leaf, whose data is this tensor's own array when it is there already."""
        return Tensor._from_array(device(spec).send(self.data), self.requires_grad)

    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        autograd.backward(self, grad, retain_graph)

    # ---- operators (each one a Function in functional.tensor_ops) -----------
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pow__(self, exponent):
        return _ops.pow(self, exponent)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # comparisons give plain boolean arrays: they have no gradient
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    # ---- reductions and shape --------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops.max(self, axis, keepdims)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _ops.reshape(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return _ops.transpose(self, axes or None)

    def permute(self, *axes):
        return self.transpose(*axes)

    @property
    def T(self):
        return self.transpose()

    def flatten(self, start_dim=0, end_dim=-1):
        return _shape.flatten(self, start_dim, end_dim)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x, like=None):
    """``x`` itself if it is a Tensor, else a new constant Tensor.

    Python numbers take the dtype of ``like`` (so ``0.5 * x`` stays float32).
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and like is not None:
        xp = get_array_module(like.data)                    # on like's device, whatever the default
        return Tensor._from_array(xp.asarray(x, dtype=like.dtype), False)
    return Tensor(x)


def tensor(data, requires_grad=False, dtype=None):
    """Build a Tensor, like ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# Tensor's operators call the Functions in functional/, which themselves build Tensors: import them
# once, here at the end where Tensor exists, instead of on every operator call.
from .functional import shape as _shape  # noqa: E402
from .functional import tensor_ops as _ops  # noqa: E402
