"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), the network that read cheques.

    layer   paper                         here (32x32 input)
    C1      6 @ 5x5 conv        -> 28x28  the same
    S2      2x2 subsampling     -> 14x14  average pool 2
    C3      16 @ 5x5 conv       -> 10x10  the same, but every C3 map sees all six S2 maps
    S4      2x2 subsampling     ->  5x5   average pool 2
    C5      120 @ 5x5 conv      ->  1x1   flatten 400 -> FC 120 (a 5x5 conv over a 5x5 map *is* an FC layer)
    F6      FC 84                         the same
    output  10 RBF units                  FC 10, trained with softmax cross-entropy

Departures from the paper, and why:

* ReLU instead of the scaled tanh ``1.7159 tanh(2x/3)``: it trains faster and is what the rest of the course uses.
* S2/S4 are plain average pools. The paper's subsampling units also had a trainable weight and bias per map
  and a sigmoid; that adds 2 parameters per map and nothing a modern reader needs.
* C3 is fully connected to S2. The paper's sparse connection table (each C3 map reads 3 to 6 of the S2 maps)
  was there to save computation in 1998 and to break symmetry; a full conv is simpler and standard.
* The RBF output layer with hand-designed prototypes becomes an ordinary linear layer.

The input is already 32x32 (the paper padded its 28x28 MNIST digits to 32x32 too), so nothing changes in size.
"""
from collections import OrderedDict

from minitorch_cnn import nn


class LeNet5(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 6, kernel_size=5)),   # C1: 32x32 -> 6 @ 28x28
            ("relu1", nn.ReLU()),
            ("pool1", nn.AvgPool2d(2)),                             # S2: -> 6 @ 14x14
            ("conv2", nn.Conv2d(6, 16, kernel_size=5)),             # C3: -> 16 @ 10x10
            ("relu2", nn.ReLU()),
            ("pool2", nn.AvgPool2d(2)),                             # S4: -> 16 @ 5x5
        ]))
        self.flatten = nn.Flatten()                                 # 16 * 5 * 5 = 400
        self.classifier = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(16 * 5 * 5, 120)),                    # C5
            ("relu3", nn.ReLU()),
            ("fc2", nn.Linear(120, 84)),                            # F6
            ("relu4", nn.ReLU()),
            ("fc3", nn.Linear(84, num_classes)),                    # output
        ]))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def lenet5(in_channels=3, num_classes=10):
    return LeNet5(in_channels, num_classes)
