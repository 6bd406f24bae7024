"""PyTorch twins of the zoo models: the same layers under the same state-dict keys, written in plain torch.

They are the reference the zoo is checked against (tests/zoo/test_zoo.py), so they are written directly from
the architecture table of the zoo issue, not generated from the zoo's code. Only the list of models comes from the
zoo's registry: ``TWINS`` maps each registered name to the class its entry names.
"""
from collections import OrderedDict

import torch
from torch import nn

from zoo.models import REGISTRY


def _seq(*named):
    return nn.Sequential(OrderedDict(named))


class LeNet5(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.features = _seq(("conv1", nn.Conv2d(in_channels, 6, 5)), ("relu1", nn.ReLU()), ("pool1", nn.AvgPool2d(2)),
                             ("conv2", nn.Conv2d(6, 16, 5)), ("relu2", nn.ReLU()), ("pool2", nn.AvgPool2d(2)))
        self.flatten = nn.Flatten()
        self.classifier = _seq(("fc1", nn.Linear(400, 120)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(120, 84)),
                               ("relu4", nn.ReLU()), ("fc3", nn.Linear(84, num_classes)))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


class AlexNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


class VGG16(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        layers, c = [], in_channels
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


# ---- GoogLeNet ---------------------------------------------------------------------------------

def _cbr(cin, cout, k, padding=0, bias=True):
    return _seq(("conv", nn.Conv2d(cin, cout, k, padding=padding, bias=bias)), ("bn", nn.BatchNorm2d(cout)),
                ("relu", nn.ReLU()))


class Inception(nn.Module):
    def __init__(self, cin, n1, r3, n3, r5, n5, pp, factorized=False):
        super().__init__()
        self.branch1 = _cbr(cin, n1, 1)
        self.branch2 = nn.Sequential(_cbr(cin, r3, 1), _cbr(r3, n3, 3, 1))
        five = [_cbr(r5, n5, 3, 1), _cbr(n5, n5, 3, 1)] if factorized else [_cbr(r5, n5, 5, 2)]
        self.branch3 = nn.Sequential(_cbr(cin, r5, 1), *five)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), _cbr(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin, num_classes):
        super().__init__()
        self.pool = nn.AvgPool2d(5, 3)
        self.conv = _cbr(cin, 128, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.flatten(self.conv(self.pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, aux_logits=True, factorized_5x5=False):
        super().__init__()
        f = factorized_5x5
        self.aux_logits = aux_logits
        self.conv1 = _cbr(in_channels, 192, 3, 1)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, f)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, f)
        self.maxpool3 = nn.MaxPool2d(3, 2, 1)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, f)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, f)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, f)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, f)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, f)
        self.maxpool4 = nn.MaxPool2d(3, 2, 1)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, f)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, f)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes)
            self.aux2 = InceptionAux(528, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool3(self.inception3b(self.inception3a(self.conv1(x))))
        x = self.inception4a(x)
        a1 = self.aux1(x) if self.aux_logits and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        a2 = self.aux2(x) if self.aux_logits and self.training else None
        x = self.inception5b(self.inception5a(self.maxpool4(self.inception4e(x))))
        logits = self.fc(self.dropout(self.flatten(self.avgpool(x))))
        return (logits, a1, a2) if self.aux_logits and self.training else logits


# ---- MobileNets ----------------------------------------------------------------------------------

def _cba(cin, cout, k, stride=1, groups=1, act=nn.ReLU):
    layers = [("conv", nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)),
              ("bn", nn.BatchNorm2d(cout))]
    return _seq(*layers, ("relu", act())) if act else _seq(*layers)


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.depthwise = _cba(cin, cin, 3, stride, groups=cin)
        self.pointwise = _cba(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers, c = [_cba(in_channels, 32, 3)], 32
        for cout, s in cfg:
            layers.append(DepthwiseSeparable(c, cout, s))
            c = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.features(x))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_shortcut = stride == 1 and cin == cout
        self.expand = _cba(cin, hidden, 1, act=nn.ReLU6) if t != 1 else nn.Identity()
        self.depthwise = _cba(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)
        self.project = _cba(hidden, cout, 1, act=None)

    def forward(self, x):
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        layers, c = [_cba(in_channels, 32, 3, act=nn.ReLU6)], 32
        for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                              (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        layers.append(_cba(320, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.features(x))))


# ---- ResNet18 ------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


# zoo name -> twin class. Each registry entry names its twin's class (zoo/models/registry.py, ``twin``); a twin
# not written here yet is left out, and tests/zoo/test_zoo.py's registry test says which one is missing.
def _twin_class(class_name):
    """The nn.Module subclass of this file called ``class_name``, or None."""
    cls = globals().get(class_name)
    return cls if isinstance(cls, type) and issubclass(cls, nn.Module) else None


TWINS = {name: _twin_class(entry.twin) for name, entry in REGISTRY.items() if _twin_class(entry.twin)}
