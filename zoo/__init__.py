"""The model zoo: seven classic CNNs adapted to 32x32 inputs, built only from ``minitorch_cnn`` layers.

    import zoo
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10)
    print(zoo.summary(model, (3, 32, 32)))

Each model file's docstring says how and why it departs from its paper for 32x32 inputs.
"""
import warnings

from .alexnet import AlexNet, alexnet
from .googlenet import GoogLeNet, googlenet
from .lenet5 import LeNet5, lenet5
from .losses import googlenet_loss
from .mobilenet_v1 import MobileNetV1, mobilenet_v1
from .mobilenet_v2 import MobileNetV2, mobilenet_v2
from .resnet import ResNet, resnet18
from .summary import print_summary, summary
from .vgg import VGG, vgg16

# ``zoo.summary`` is the function (imported above) and ``python -m zoo.summary`` the same file run as a script.
# runpy warns that the package already imported that file; running it twice is harmless (it only defines
# functions), so the warning is silenced for this one module.
warnings.filterwarnings("ignore", message="'zoo.summary' found in sys.modules", category=RuntimeWarning)

# name -> builder(in_channels, num_classes, **kwargs), in the order the course meets them
MODELS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "googlenet": googlenet,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "resnet18": resnet18,
}


def get_model(name, in_channels=3, num_classes=10, **kwargs):
    """Build the model registered as ``name``; extra keyword arguments go to its builder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, **kwargs)


__all__ = ["MODELS", "AlexNet", "GoogLeNet", "LeNet5", "MobileNetV1", "MobileNetV2", "ResNet", "VGG", "alexnet",
           "get_model", "googlenet", "googlenet_loss", "lenet5", "mobilenet_v1", "mobilenet_v2", "print_summary",
           "resnet18", "summary", "vgg16"]
