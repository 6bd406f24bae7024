"""MobileNet v1 (Howard et al., 2017): a VGG-like stack built from depthwise-separable convolutions.

A standard 3x3 conv from C to C' channels costs 9 * C * C' multiply-adds per pixel. The separable block
splits it in two:

    depthwise 3x3 (groups = C: each channel filtered on its own)   9 * C        + BN + ReLU
    pointwise 1x1 (mixes the channels)                              C * C'       + BN + ReLU

which is 8 to 9 times cheaper for C' >= 64. ``BLOCKS`` below is the paper's Table 1, one entry per
separable block: (output channels, stride of the depthwise conv).

Departures from the paper for 32x32 inputs, and why:

* The first 3x3 conv has stride 1 instead of 2: with the paper's five stride-2 steps a 32x32 image would
  end at 1x1 before the last blocks. Here there are four (32 -> 16 -> 8 -> 4 -> 2), so the final 1024
  channels still see a 2x2 map, and global average pooling replaces the paper's 7x7 average pool.
* Width multiplier 1.0 and resolution multiplier 1.0 only (the ``width`` argument scales channels anyway).
* No dropout before the classifier (the paper does not use any), FC with num_classes outputs.
* Convs have no bias: each is followed by BatchNorm, whose shift plays the bias' role.
"""
from minitorch_cnn import nn

from .blocks import conv_bn

# The paper's Table 1 after the first conv: (output channels, depthwise stride).
BLOCKS = [
    (64, 1),
    (128, 2), (128, 1),                 # 32x32 -> 16x16
    (256, 2), (256, 1),                 # -> 8x8
    (512, 2), *[(512, 1)] * 5,          # -> 4x4, then five 512 blocks
    (1024, 2), (1024, 1),               # -> 2x2
]


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 (carries the stride) then pointwise 1x1, each with BatchNorm and ReLU."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.depthwise = conv_bn(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = conv_bn(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, width=1.0):
        super().__init__()
        channels = int(32 * width)
        layers = [conv_bn(in_channels, channels, 3, stride=1)]      # stride 1 for 32x32 (paper: 2)
        for out, stride in BLOCKS:
            layers.append(DepthwiseSeparable(channels, int(out * width), stride))
            channels = int(out * width)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.features(x))))


def mobilenet_v1(in_channels=3, num_classes=10, **kwargs):
    return MobileNetV1(in_channels, num_classes, **kwargs)
