"""ResNet-18 (He, Zhang, Ren and Sun, 2016): learn a residual F(x) and add it back, y = relu(F(x) + x).

A BasicBlock is two 3x3 convs with BatchNorm. The shortcut is the identity when the shapes match and a
1x1 conv with stride 2 plus BatchNorm (the paper's "option B" projection) when the block halves the map
and doubles the channels. ``STAGES`` is the ResNet-18 column of the paper's Table 1: four stages of
two blocks each.

Departures from the paper for 32x32 inputs, and why:

* The stem is one 3x3 conv, stride 1, with no max pool. The paper's 7x7 stride-2 conv and 3x3 max pool
  shrink 224 to 56 at once; on 32x32 they would leave 8x8 before the first block. Here the stages run at
  32, 16, 8 and 4 (as in the CIFAR ResNet-18 that most courses use).
* Global average pooling over 4x4 instead of 7x7, then FC num_classes.
* Initialisation as in the paper (He et al. 2015): convs Kaiming-normal with fan_out and the ReLU gain,
  BatchNorm weight 1 and bias 0. The FC layer keeps PyTorch's default.
"""
from minitorch_cnn import nn

# ResNet-18, paper Table 1 (conv2_x ... conv5_x): (channels, number of blocks, stride of the first block).
STAGES = [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)]


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:   # shapes differ: project x to the new shape
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))        # the residual connection


class ResNet(nn.Module):
    def __init__(self, stages, in_channels=3, num_classes=10):
        """``stages``: four (channels, blocks, stride) rows, like ``STAGES``."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        channels = 64
        for i, (width, blocks, stride) in enumerate(stages, start=1):     # layer1 ... layer4
            layer = [BasicBlock(channels, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))     # 32x32 -> 32, 16, 8, 4
        return self.fc(self.flatten(self.avgpool(x)))


def resnet18(in_channels=3, num_classes=10):
    return ResNet(STAGES, in_channels, num_classes)
