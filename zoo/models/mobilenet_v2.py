"""MobileNet v2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

A ResNet bottleneck goes wide -> narrow -> wide. The inverted residual goes narrow -> wide -> narrow:

    expand     1x1 conv, C -> t*C, BN, ReLU6     (left out when t = 1: nothing to expand)
    depthwise  3x3 conv per channel, BN, ReLU6   (carries the stride)
    project    1x1 conv, t*C -> C', BN           no activation: a ReLU on the narrow output would
                                                 destroy information ("linear bottleneck")

and the shortcut joins the narrow ends, only where shapes allow an identity (stride 1 and C = C').
``SETTINGS`` is the paper's Table 2: expansion t, output channels c, repeats n, stride s of the first repeat.

Departures from the paper for 32x32 inputs, and why:

* The first conv has stride 1 and the second stage (t=6, c=24) stride 1 instead of 2. The paper's
  five stride-2 steps take 224 to 7; on 32x32 we keep three (32 -> 16 -> 8 -> 4), so the final 1280
  channels see a 4x4 map before global average pooling.
* Width multiplier 1.0 only, no dropout before the classifier (the table has none), FC num_classes.
* Convs have no bias: each is followed by BatchNorm.
"""
from functools import partial

from minitorch_cnn import nn

from .blocks import conv_bn

# The paper's Table 2 (strides adapted to 32x32 as described above): t, c, n, s.
SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),   # paper: stride 2
    (6, 32, 3, 2),   # 32x32 -> 16x16
    (6, 64, 4, 2),   # -> 8x8
    (6, 96, 3, 1),
    (6, 160, 3, 2),  # -> 4x4
    (6, 320, 1, 1),
]

# conv (padding k // 2, no bias) -> BatchNorm -> ReLU6; the projection uses conv_bn(..., activation=None).
conv_bn_relu6 = partial(conv_bn, activation=nn.ReLU6)


class InvertedResidual(nn.Module):
    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = conv_bn_relu6(in_channels, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        self.project = conv_bn(hidden, out_channels, 1, activation=None)     # linear bottleneck

    def forward(self, x):
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, last_channels=1280):
        super().__init__()
        layers = [conv_bn_relu6(in_channels, 32, 3, stride=1)]             # stride 1 for 32x32 (paper: 2)
        channels = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(conv_bn_relu6(channels, last_channels, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(last_channels, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.features(x))))


def mobilenet_v2(in_channels=3, num_classes=10, **kwargs):
    return MobileNetV2(in_channels, num_classes, **kwargs)
