"""The layers of a CNN as Modules: each holds its Parameters and calls one function from ``functional``."""
import numpy as np

from .. import functional as F
from ..config import Config
from ..device import DEFAULT_DTYPE
from ..functional.checks import pair
from . import init
from .module import Module, Parameter


def _empty(*shape):
    """Uninitialised parameter storage, like ``torch.empty``: ``init.default_init_`` fills it right after."""
    return Config.device.xp.empty(shape, dtype=DEFAULT_DTYPE)


class Conv2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, Ho, Wo); weight (out, in/groups, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros"):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "Conv2d", "kernel_size")
        self.stride, self.padding = pair(stride, "Conv2d", "stride"), pair(padding, "Conv2d", "padding")
        self.dilation = pair(dilation, "Conv2d", "dilation")
        self.weight = Parameter(_empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = Parameter(_empty(out_channels)) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return self.folded_forward(x, self.weight, self.bias)

    def folded_forward(self, x, weight, bias):
        """This convolution with other weights of the same shapes: nn/fold.py's batch norm folded in."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        try:
            return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.bias is None else "")


class Linear(Module):
    """(*, in_features) -> (*, out_features); weight (out, in)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty(out_features, in_features))
        self.bias = Parameter(_empty(out_features)) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expected input (*, {self.in_features}), got {tuple(x.shape)}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _BatchNorm(Module):
    """Batch norm over channel dim 1; buffers running_mean, running_var, num_batches_tracked as in PyTorch."""
    allowed_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        xp, dtype = Config.device.xp, DEFAULT_DTYPE
        self.weight = Parameter(xp.ones(num_features, dtype)) if affine else None
        # bias=False keeps the scale but drops the shift (torch 2.13's keyword-only ``bias``)
        self.bias = Parameter(xp.zeros(num_features, dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", xp.zeros(num_features, dtype))
            self.register_buffer("running_var", xp.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", xp.zeros((), np.int64))

    def forward(self, x, activation=None):
        """x: (N, C, *) -> (N, C, *). ``activation``: None, "relu" or "relu6", applied to the output in the same
        Function (``F.batch_norm``'s; nn/fuse.py asks for it)."""
        if x.ndim not in self.allowed_ndims or x.shape[1] != self.num_features:
            layouts = " or ".join(f"(N, {self.num_features}{', L' if n == 3 else ''}{', H, W' if n == 4 else ''})"
                                  for n in self.allowed_ndims)
            raise ValueError(f"{self!r} expected input {layouts}, got {tuple(x.shape)}")
        use_batch_stats = self.training or not self.track_running_stats
        momentum, counter = self.momentum, None
        if self.training and self.track_running_stats:
            if momentum is None:  # cumulative moving average, as PyTorch: the count is needed here (a GPU syncs)
                self.num_batches_tracked += 1
                momentum = 1.0 / float(self.num_batches_tracked)
            else:                 # counted by F.batch_norm: on a GPU inside its kernel, not by a launch of its own
                counter = self.num_batches_tracked
        running = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        return F.batch_norm(x, *running, self.weight, self.bias, use_batch_stats, momentum or 0.0, self.eps,
                            num_batches_tracked=counter, activation=activation)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    allowed_ndims = (4,)


class BatchNorm1d(_BatchNorm):
    allowed_ndims = (2, 3)


class _Pool(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _call(self, fn, x, **kw):
        try:
            return fn(x, self.kernel_size, self.stride, self.padding, **kw)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None


class MaxPool2d(_Pool):
    """(N, C, H, W) -> (N, C, Ho, Wo), the maximum of each window."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        if ceil_mode:
            raise ValueError("MaxPool2d: ceil_mode=True is not supported; pad the input instead")
        super().__init__(kernel_size, stride, padding)

    def forward(self, x):
        return self._call(F.max_pool2d, x)


class AvgPool2d(_Pool):
    """(N, C, H, W) -> (N, C, Ho, Wo), the mean of each window."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        if ceil_mode:
            raise ValueError("AvgPool2d: ceil_mode=True is not supported; pad the input instead")
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return self._call(F.avg_pool2d, x, count_include_pad=self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, *output_size); output_size=1 is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W) by default (dims start_dim..end_dim merged)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a missing shortcut projection)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class CrossEntropyLoss(Module):
    """(logits (N, K), target (N,) ints) -> scalar loss; see ``functional.cross_entropy``."""

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.label_smoothing, self.reduction)
