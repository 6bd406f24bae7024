"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), shrunk from 224x224 to 32x32 inputs.

    paper (224x224)                        here (32x32)
    conv 96 @ 11x11 / 4, LRN, max pool 3/2  conv 64 @ 3x3, max pool 2          32 -> 16
    conv 256 @ 5x5, LRN, max pool 3/2       conv 192 @ 3x3, max pool 2         16 -> 8
    conv 384 @ 3x3                          conv 384 @ 3x3
    conv 384 @ 3x3                          conv 256 @ 3x3
    conv 256 @ 3x3, max pool 3/2            conv 256 @ 3x3, max pool 2         8 -> 4
    dropout, FC 4096, dropout, FC 4096      the same (on 256 * 4 * 4 = 4096 inputs)
    FC 1000                                 FC num_classes

Departures from the paper, and why:

* An 11x11 stride-4 first layer would turn a 32x32 image into 6x6 at once. Every conv here is 3x3 with
  padding 1 and stride 1, so only the three 2x2 max pools shrink the map (32 -> 16 -> 8 -> 4).
* Widths 64, 192, 384, 256, 256 are those of the one-GPU variant (Krizhevsky 2014, "One weird trick"),
  which is also torchvision's AlexNet; the 2012 paper split 96/256/384/384/256 across two GPUs.
* No local response normalisation: later work found it does not help, and the course does not cover it.
* Max pools are 2x2 and do not overlap (the paper used overlapping 3x3 stride-2 pools).

The dropout-before-FC order of the classifier is torchvision's.
"""
from minitorch_cnn import nn


class AlexNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 -> 16
            nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # 16 -> 8
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),          # 8 -> 4
        )
        self.flatten = nn.Flatten()                                                              # 256 * 4 * 4
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 4 * 4, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def alexnet(in_channels=3, num_classes=10, **kwargs):
    return AlexNet(in_channels, num_classes, **kwargs)
