"""GoogLeNet / Inception v1 (Szegedy et al., 2015) for 32x32 inputs.

An Inception module runs four branches side by side on the same input and concatenates their outputs
along the channel axis:

    1x1 conv  |  1x1 reduce -> 3x3 conv  |  1x1 reduce -> 5x5 conv  |  3x3 max pool (stride 1) -> 1x1 "pool proj"

The 1x1 "reduce" convs shrink the channel count before the expensive 3x3 and 5x5 convs; that is what
keeps a 22-layer network at a few million parameters. ``INCEPTION`` below is the paper's Table 1.

Departures from the paper for 32x32 inputs, and why:

* Stem: the paper's 7x7/2 conv, max pool, LRN, 1x1 and 3x3 convs and second max pool take 224x224 down to
  192 @ 28x28. On 32x32 that would leave 4x4 before inception 3a, so the stem here is one 3x3 conv to 192
  channels at full resolution (as in the widely used CIFAR versions), and there is no LRN.
* Every conv is followed by BatchNorm and ReLU (BatchNorm postdates the paper; it makes the network train
  from scratch without the paper's careful schedule). The convs keep their bias, as the CIFAR versions do,
  although BatchNorm's shift makes it redundant: in training mode its gradient is exactly zero.
* Map sizes: 32x32 through 3a-3b, max pool 3/2 -> 16x16 through 4a-4e, max pool 3/2 -> 8x8 through 5a-5b
  (the paper: 28, 14, 7). The pools use padding 1 so that 32 -> 16 -> 8 exactly.
* ``factorized_5x5=True`` replaces each 5x5 conv by two 3x3 convs (Inception v2/v3, Szegedy et al. 2016):
  the same receptive field with fewer weights. The default is the paper's real 5x5 conv.
* Auxiliary classifiers: the paper's are avg pool 5/3 (14x14 -> 4x4), 1x1 conv 128, FC 1024, dropout 0.7,
  FC. Here the input map is 16x16 and the same avg pool 5/3 gives 4x4 as well, so the head is unchanged:
  128 * 4 * 4 = 2048 -> FC 1024. BatchNorm follows its 1x1 conv like everywhere else.
* Final dropout 0.4 and a single FC layer after global average pooling, as in the paper.

In training mode the network returns ``(logits, aux1, aux2)``; in eval mode only the logits (the auxiliary
heads are a training aid and are thrown away at test time). ``googlenet_loss`` at the end of this file
combines the three.
"""
from functools import partial

from minitorch_cnn import functional as F
from minitorch_cnn import nn

from .blocks import conv_bn

# The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
# A module's output has #1x1 + #3x3 + #5x5 + pool proj channels; the next module's input is that.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),      # -> 256     32x32
    "3b": (128, 128, 192, 32, 96, 64),    # -> 480
    "4a": (192, 96, 208, 16, 48, 64),     # -> 512     16x16, auxiliary classifier 1 reads this
    "4b": (160, 112, 224, 24, 64, 64),    # -> 512
    "4c": (128, 128, 256, 24, 64, 64),    # -> 512
    "4d": (112, 144, 288, 32, 64, 64),    # -> 528     auxiliary classifier 2 reads this
    "4e": (256, 160, 320, 32, 128, 128),  # -> 832
    "5a": (256, 160, 320, 32, 128, 128),  # -> 832     8x8
    "5b": (384, 192, 384, 48, 128, 128),  # -> 1024
}

# conv (padding k // 2) -> BatchNorm -> ReLU. GoogLeNet's convs keep their bias (see the docstring above).
conv_bn_relu = partial(conv_bn, bias=True)


class Inception(nn.Module):
    """Four parallel branches, concatenated along channels; spatial size unchanged."""

    def __init__(self, in_channels, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj, factorized_5x5=False):
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, n1x1, 1)
        self.branch2 = nn.Sequential(conv_bn_relu(in_channels, n3x3red, 1),
                                     conv_bn_relu(n3x3red, n3x3, 3))
        if factorized_5x5:  # two stacked 3x3 convs see a 5x5 window with 18 instead of 25 weights per pair
            five = [conv_bn_relu(n5x5red, n5x5, 3), conv_bn_relu(n5x5, n5x5, 3)]
        else:
            five = [conv_bn_relu(n5x5red, n5x5, 5)]
        self.branch3 = nn.Sequential(conv_bn_relu(in_channels, n5x5red, 1), *five)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     conv_bn_relu(in_channels, pool_proj, 1))
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj

    def forward(self, x):
        return F.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 16x16 -> avg pool 5/3 -> 4x4 -> 1x1 conv 128 -> FC 1024 -> dropout 0.7 -> FC."""

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = conv_bn_relu(in_channels, 128, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.flatten(self.conv(self.pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, aux_logits=True, factorized_5x5=False, dropout=0.4):
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = conv_bn_relu(in_channels, 192, 3)                  # the stem: 192 @ 32x32
        channels = 192
        for name, widths in INCEPTION.items():                          # inception3a ... inception5b
            block = Inception(channels, *widths, factorized_5x5=factorized_5x5)
            setattr(self, f"inception{name}", block)
            channels = block.out_channels
        self.maxpool3 = nn.MaxPool2d(3, stride=2, padding=1)            # after 3b: 32x32 -> 16x16
        self.maxpool4 = nn.MaxPool2d(3, stride=2, padding=1)            # after 4e: 16x16 -> 8x8
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)                          # 1024 @ 8x8 -> 1024
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        aux = self.aux_logits and self.training        # the auxiliary heads only run while training
        x = self.conv1(x)
        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(self.flatten(self.avgpool(x))))
        return (logits, aux1, aux2) if aux else logits


def googlenet(in_channels=3, num_classes=10, **kwargs):
    return GoogLeNet(in_channels, num_classes, **kwargs)


# ----------------------------------------------------------------------------- the training loss

def googlenet_loss(output, target, aux_weight=0.3, main_weight=1.0, criterion=F.cross_entropy):
    """One scalar loss from GoogLeNet's output: the main classifier plus its two auxiliary classifiers.

    The paper (Section 5) adds the auxiliary losses "with a discount weight (0.3)"; the course slides
    weight the final classifier 0.7 instead of 1:

        loss = main + 0.3 * (aux1 + aux2)          main_weight=1.0, aux_weight=0.3 (default, the paper)
        loss = 0.7 * main + 0.3 * (aux1 + aux2)    main_weight=0.7, aux_weight=0.3 (the slides)

    ``output`` is the training-mode tuple ``(logits, aux1, aux2)``, each (N, num_classes), or plain logits
    (eval mode, or ``aux_logits=False``); for plain logits the result is just ``criterion(logits, target)``,
    unweighted, so validation losses are comparable with any other model's. ``target``: (N,) class indices.
    """
    if not isinstance(output, (tuple, list)):
        return criterion(output, target)
    logits, *aux = output
    loss = criterion(logits, target)
    if main_weight != 1.0:
        loss = main_weight * loss
    for a in aux:
        loss = loss + aux_weight * criterion(a, target)
    return loss
