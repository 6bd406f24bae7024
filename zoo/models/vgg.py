"""VGG (Simonyan and Zisserman, 2015): only 3x3 convs, depth as the one knob.

The paper's Table 1 is a list per configuration: a number is a 3x3 conv (padding 1) with that many
output channels, "M" a 2x2 max pool. ``CONFIGS`` below is that table; ``vgg16`` is column D.

Departures from the paper for 32x32 inputs, and why:

* Every conv is followed by batch normalisation (the "vgg16_bn" variant, Ioffe and Szegedy 2015). The
  paper initialised its deeper nets' first four convs and FC layers from a trained 11-layer net to get
  them to train at all; with BatchNorm they train from scratch. The convs keep their bias, as in
  torchvision's vgg16_bn, although BatchNorm's shift makes it redundant (its gradient is zero in training).
* Five 2x2 max pools take 32x32 down to 512 @ 1x1 (the paper: 224 -> 7x7), so the first FC layer has
  512 inputs instead of 512 * 7 * 7 = 25,088. That single change removes about 100 M parameters.
* The classifier keeps the paper's FC 4096, FC 4096 and its dropout 0.5, with num_classes outputs.
"""
from minitorch_cnn import nn

# Table 1 of the paper: configurations A (11 weight layers), B (13), D (16) and E (19).
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(config, in_channels):
    """The conv part, layer by layer from a config list: conv 3x3 -> BatchNorm -> ReLU, or a 2x2 max pool."""
    layers = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, config, in_channels=3, num_classes=10, dropout=0.5):
        super().__init__()
        self.features = make_features(config, in_channels)           # 32x32 -> 512 @ 1x1
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def vgg16(in_channels=3, num_classes=10, **kwargs):
    return VGG(CONFIGS["D"], in_channels, num_classes, **kwargs)
