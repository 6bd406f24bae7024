"""A stand-in for ``cupy`` that is as strict as CuPy about host and device, for machines without a GPU.

Device arrays (``ndarray``) wrap a NumPy array (their "device memory") but are NOT ``np.ndarray``s, and
every implicit crossing fails as it does on CuPy:

    np.asarray(dev)              TypeError: Implicit conversion to a NumPy array is not allowed
    dev + host_ndarray           TypeError: Unsupported type <class 'numpy.ndarray'>
    cupy.matmul(dev, host)       TypeError (every function except asarray/array, which transfer)
    dev[1:] = host_ndarray       ValueError: non-scalar numpy.ndarray cannot be used for fill

Explicit crossings work: ``cupy.asarray(host)``, ``dev.get()``, ``cupy.asnumpy(dev)``. NumPy functions
called on device arrays (``np.sum(dev)``) dispatch here where this module has the function, as CuPy's
``__array_function__`` does; ``RawModule`` kernels run on the project's host emulator
(minitorch_cnn/kernels/cuda/emulator.py) over the wrapped host buffers, so they write in place.

Every crossing and every kernel is recorded, with the library line that caused it, in ``LEDGER``
(support/standin_ledger.py): device -> host syncs, host -> device copies, RawModule launches, CuPy's own
kernels, and the hidden copies ``cupy.matmul`` makes for ndim > 2 operands that are not C-contiguous.

Bind it BEFORE minitorch_cnn is imported (a fresh interpreter or a subprocess)::

    import sys; sys.path.insert(0, "tests")
    from support import strict_cupy; strict_cupy.install()
    import minitorch_cnn          # its "import cupy" now gets this module
"""
import builtins  # this module's own any/all/sum/max/min are CuPy's: the built-ins by name
import numbers
import sys
import types

import numpy as np

from .standin_ledger import LEDGER, matmul_copies

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_current = [0]   # the current device id (cuda.Device(i) as a context manager changes it)


class ndarray:
    """A device array: ``_host`` is its memory (a NumPy array), ``device.id`` the GPU it is on."""

    __array_priority__ = 100

    def __init__(self, shape, dtype=float):
        self._host, self._id = np.empty(shape, dtype), _current[0]

    # ---- what it is ----------------------------------------------------------------------------
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    strides = property(lambda self: self._host.strides)
    flags = property(lambda self: self._host.flags)
    device = property(lambda self: cuda.Device(self._id))
    T = property(lambda self: _wrap(self._host.T, self._id))
    base = property(lambda self: None if self._host.base is None else _wrap(self._host.base, self._id))

    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def get(self, stream=None, order="C", out=None):
        """A host copy (the one explicit way out, with cupy.asnumpy): a device -> host sync."""
        LEDGER.record("sync", f"get {self.shape}", self.nbytes)
        return np.array(self._host, order=order)

    def set(self, array):
        LEDGER.record("h2d", f"set {self.shape}", self.nbytes)
        self._host[...] = array

    def _synced(self, what):
        """The host memory, for a conversion that waits for the device and copies back (a sync)."""
        LEDGER.record("sync", what, self.nbytes)
        return self._host

    def __repr__(self):
        return repr(self._synced("repr"))

    def __str__(self):
        return str(self._synced("str"))

    def __format__(self, spec):
        return format(self._synced("format"), spec)

    # ---- methods: NumPy's, on the device memory, results stay on the device -------------------------
    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(f"strict_cupy.ndarray has no attribute {name!r}")
        method = getattr(self._host, name)
        def call(*args, **kwargs):
            result = method(*_unwrap(args, self._id), **_unwrap(kwargs, self._id))
            _count_op(name, result, (self._host,))
            return _result(result, self._id)
        return call

    def item(self):
        return self._synced("item").item()

    def tolist(self):
        return self._synced("tolist").tolist()

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        return (_wrap(row, self._id) for row in self._host)

    def __bool__(self):
        return bool(self._synced("bool"))

    def __float__(self):
        return float(self._synced("float"))

    def __int__(self):
        return int(self._synced("int"))

    def __index__(self):
        return self._synced("index").__index__()

    def __getitem__(self, key):
        result = self._host[_unwrap_key(key)]
        _count_op("getitem", result, (self._host,))    # basic slicing is a view; fancy indexing a gather kernel
        return _result(result, self._id)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if not (isinstance(key, slice) and key == slice(None)):   # CuPy copies a host array only into x[:]
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            LEDGER.record("h2d", f"setitem {value.shape}", value.nbytes)
        LEDGER.record("op", "setitem")
        self._host[_unwrap_key(key)] = value._host if isinstance(value, ndarray) else value

    # ---- NumPy's protocols: ufuncs and functions on device arrays stay on the device ---------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        device_id = _device_of(inputs + tuple(kwargs.get("out", ())))
        hosts, host_kwargs = _unwrap(inputs, device_id), _unwrap(kwargs, device_id)
        if ufunc is np.matmul:
            matmul_copies(hosts, (host_kwargs.get("out") or (None,))[0])
        LEDGER.record("op", f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__)
        result = getattr(ufunc, method)(*hosts, **host_kwargs)
        if "out" in kwargs:
            out = kwargs["out"]
            return out[0] if len(out) == 1 else out
        return _result(result, device_id)

    def __array_function__(self, func, types, args, kwargs):
        ours = _FUNCTIONS.get(func.__name__)
        return NotImplemented if ours is None else ours(*args, **kwargs)


def _binary(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if not isinstance(other, ndarray | np.ndarray | np.generic | numbers.Number):
            return NotImplemented             # a Tensor, a list: let the other side answer (or fail)
        if inplace:
            return ufunc(self, other, out=(self,))
        return ufunc(other, self) if reflected else ufunc(self, other)
    return op


for _name, _uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
                   ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power),
                   ("matmul", np.matmul), ("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    setattr(ndarray, f"__{_name}__", _binary(_uf))
    setattr(ndarray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_uf, inplace=True))
for _name, _uf in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                   ("eq", np.equal), ("ne", np.not_equal)]:
    setattr(ndarray, f"__{_name}__", _binary(_uf))
ndarray.__hash__ = None
ndarray.__neg__ = lambda self: np.negative(self)
ndarray.__pos__ = lambda self: np.positive(self)
ndarray.__abs__ = lambda self: np.absolute(self)
ndarray.__invert__ = lambda self: np.invert(self)

# the ndarray methods CuPy has too (and the library may call)
_METHODS = {"all", "any", "argmax", "argmin", "astype", "clip", "conj", "copy", "cumsum", "diagonal", "dot",
            "fill", "flatten", "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "reshape", "round",
            "squeeze", "std", "sum", "swapaxes", "take", "trace", "transpose", "var", "view"}


# ---- crossing the boundary ---------------------------------------------------------------------

def _wrap(host, device_id):
    array = ndarray.__new__(ndarray)
    array._host, array._id = host, device_id
    return array


def _result(value, device_id):
    """Results on the device: arrays and NumPy scalars (CuPy's reductions give 0-d device arrays)."""
    if isinstance(value, np.ndarray | np.generic):
        return _wrap(np.asarray(value) if isinstance(value, np.generic) else value, device_id)
    if isinstance(value, tuple | list):                    # several results, or split's list of pieces
        return type(value)(_result(v, device_id) for v in value)
    return value


def _device_of(values):
    ids = {v._id for v in values if isinstance(v, ndarray)}
    if len(ids) > 1:
        raise ValueError(f"arrays on different devices: {sorted(ids)} (CuPy refuses to mix them)")
    return ids.pop() if ids else _current[0]


def _unwrap(value, device_id):
    """Device arrays -> their host memory; a host ndarray anywhere is refused, as CuPy refuses it."""
    if isinstance(value, ndarray):
        if value._id != device_id:
            raise ValueError(f"the array is on device {value._id}, the operation on device {device_id}")
        return value._host
    if isinstance(value, np.ndarray):
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, tuple | list):
        return type(value)(_unwrap(v, device_id) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, device_id) for k, v in value.items()}
    return value


def _unwrap_key(key):
    """An index: device arrays in it become host ones; host index arrays are allowed (CuPy copies them)."""
    if isinstance(key, ndarray):
        return key._host
    if isinstance(key, np.ndarray | list):
        LEDGER.record("h2d", "host index array", np.asarray(key).nbytes)
        return key
    if isinstance(key, tuple):
        return tuple(_unwrap_key(k) for k in key)
    return key


# ---- the module's functions ----------------------------------------------------------------------

_QUERIES = {"shares_memory", "may_share_memory", "ndim", "shape", "size", "isscalar", "result_type"}


def _count_op(name, result, inputs):
    """Record one of CuPy's kernels unless ``result`` is a view of an input (reshape, transpose, slicing) or
    the call was a query; ``empty``-like allocations launch nothing either."""
    if name in _QUERIES or name.startswith("empty"):
        return
    first = result[0] if isinstance(result, list | tuple) and result and name == "split" else result   # views
    if isinstance(first, np.ndarray) and builtins.any(isinstance(a, np.ndarray) and np.may_share_memory(first, a)
                                             for a in inputs):
        return
    LEDGER.record("op", name)


def _on_device(np_func, name=None):
    """``np_func`` over device arrays: host ndarrays refused, results on the device."""
    name = name or np_func.__name__
    def call(*args, **kwargs):
        flat = tuple(args) + tuple(a for v in args if isinstance(v, list | tuple) for a in v)
        device_id = _device_of(flat + tuple(kwargs.values()))
        hosts, host_kwargs = _unwrap(args, device_id), _unwrap(kwargs, device_id)
        if name == "matmul":
            matmul_copies(hosts[:2], host_kwargs.get("out"))
        result = np_func(*hosts, **host_kwargs)
        _count_op(name, result, tuple(_unwrap(flat, device_id)))
        return _result(result, device_id)
    call.__name__ = name
    return call


class _Ufunc:
    """``cupy.add`` and friends: callable, with ``.at`` and ``.reduce``; host ndarray inputs refused."""

    def __init__(self, ufunc):
        self._ufunc, self.__name__ = ufunc, ufunc.__name__
        self.at = _on_device(ufunc.at, f"{ufunc.__name__}.at")
        self.reduce = _on_device(ufunc.reduce, f"{ufunc.__name__}.reduce")

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        result = _on_device(self._ufunc, self.__name__)(*args, **kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) else out
        return result


def asarray(a, dtype=None, order=None):
    """The one way in: a host array (or list, number) copied to the device; a device array kept."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    host = np.array(a, dtype=dtype, order=order or "K")
    LEDGER.record("h2d", f"asarray {host.shape}", host.nbytes)
    return _wrap(host, _current[0])


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    host = a._host if isinstance(a, ndarray) else a
    made = np.array(host, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
    LEDGER.record("op" if isinstance(a, ndarray) else "h2d", f"array {made.shape}", made.nbytes)
    return _wrap(made, _current[0])


def asnumpy(a, stream=None, order="C", out=None):
    """A host copy of a device array; host arrays pass through (as cupy.asnumpy does)."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else np


def _creator(np_func):
    def create(*args, **kwargs):
        if np_func is not np.empty:
            LEDGER.record("op", np_func.__name__)       # a fill kernel
        return _wrap(np_func(*args, **kwargs), _current[0])
    create.__name__ = np_func.__name__
    return create


_CREATE = ["empty", "zeros", "ones", "full", "arange", "linspace", "eye", "identity"]
_FUNCS = ["ascontiguousarray", "empty_like", "zeros_like", "ones_like", "full_like", "einsum", "stack",
          "concatenate", "broadcast_to", "take_along_axis", "where", "clip", "shares_memory", "may_share_memory",
          "sum", "mean", "max", "min", "argmax", "argmin", "prod", "reshape", "transpose", "squeeze", "expand_dims",
          "pad", "tensordot", "dot", "copyto", "allclose", "array_equal", "isclose", "any", "all", "cumsum",
          "moveaxis", "swapaxes", "ravel", "flip", "tile", "repeat", "split", "unique", "count_nonzero", "var", "std",
          "amax", "amin", "outer", "vstack", "hstack", "atleast_1d", "atleast_2d", "nonzero", "argsort", "sort"]
_UFUNCS = ["add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative", "positive", "power",
           "remainder", "sqrt", "square", "exp", "log", "log1p", "expm1", "tanh", "abs", "absolute", "sign",
           "maximum", "minimum", "fmax", "fmin", "isfinite", "isnan", "isinf", "equal", "not_equal", "less",
           "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_not", "matmul", "floor",
           "ceil", "sin", "cos", "reciprocal", "invert", "bitwise_and", "bitwise_or", "bitwise_xor"]
_CONSTANTS = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "bool_",
              "intp", "inf", "nan", "pi", "e", "newaxis", "dtype", "finfo", "iinfo", "result_type", "promote_types",
              "can_cast", "ndim", "shape", "size", "isscalar"]
_module = sys.modules[__name__]
_FUNCTIONS = {"asarray": asarray, "array": array, "asnumpy": asnumpy}
for _name in _CREATE:
    setattr(_module, _name, _creator(getattr(np, _name)))
for _name in _FUNCS:
    _FUNCTIONS[_name] = _on_device(getattr(np, _name))
    setattr(_module, _name, _FUNCTIONS[_name])
for _name in _UFUNCS:
    setattr(_module, _name, _Ufunc(getattr(np, _name)))
for _name in _CONSTANTS:
    setattr(_module, _name, getattr(np, _name))

lib = types.ModuleType("cupy.lib")
lib.stride_tricks = types.ModuleType("cupy.lib.stride_tricks")
lib.stride_tricks.as_strided = _on_device(np.lib.stride_tricks.as_strided)


# ---- random, cuda, RawModule: in strict_cupy_device.py (imported last: it uses ndarray and _result) -----------

from .strict_cupy_device import Device, RawModule, cuda, launches, random, runtime  # noqa: E402, F401


def install(device_count=1):
    """Make ``import cupy`` (and cupy.cuda, cupy.random, ...) give this module: call it before anything
    imports minitorch_cnn, whose device module binds CuPy once, at import."""
    if "minitorch_cnn" in sys.modules:
        raise RuntimeError("strict_cupy.install(): minitorch_cnn is already imported with the real (or no) CuPy; "
                           "install the stand-in first, in a fresh interpreter")
    runtime.DEVICE_COUNT = device_count
    sys.modules.update({"cupy": _module, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime, "cupy.random": random,
                        "cupy.lib": lib, "cupy.lib.stride_tricks": lib.stride_tricks})
    return _module
