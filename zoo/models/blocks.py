"""The one block several zoo models share: a convolution, its BatchNorm, and (usually) an activation.

GoogLeNet, MobileNet v1 and MobileNet v2 all build their networks from the same three-layer unit:

    conv k x k ("same" padding k // 2, so only the stride changes the map size) -> BatchNorm -> activation

They differ only in the arguments: GoogLeNet's convs keep their bias (as the CIFAR versions do), the
MobileNets' do not (BatchNorm's shift plays the bias' role); MobileNet v2 uses ReLU6, and no activation at
all on its linear bottleneck. The submodules are always named ``conv``, ``bn`` and ``relu`` (also for
ReLU6), so the state-dict keys are ``...conv.weight``, ``...bn.running_mean`` in every model.

VGG's conv-BN-ReLU and ResNet's BasicBlock are written out in their own files instead: there the layers sit
in one flat ``nn.Sequential`` (VGG) or are named ``conv1``/``bn1`` (ResNet), as in torchvision, and their
state-dict keys must stay the same.
"""
from collections import OrderedDict

from minitorch_cnn import nn


def conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1, bias=False, activation=nn.ReLU):
    """Conv2d -> BatchNorm2d -> ``activation()``; ``activation=None`` leaves the output linear.

    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)) for odd kernel sizes.
    ``groups=in_channels=out_channels`` makes the conv depthwise (each channel filtered on its own).
    """
    layers = [
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                           groups=groups, bias=bias)),
        ("bn", nn.BatchNorm2d(out_channels)),
    ]
    if activation is not None:
        layers.append(("relu", activation()))
    return nn.Sequential(OrderedDict(layers))
