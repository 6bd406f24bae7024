"""The model zoo: seven classic CNNs adapted to 32x32 inputs, built only from ``minitorch_cnn`` layers.

    import zoo
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10)
    print(zoo.summary(model, (3, 32, 32)))

The models live in ``zoo/models/``, one file each; each file's docstring says how and why it departs from
its paper for 32x32 inputs. ``zoo/models/registry.py`` is the one table of models: ``MODELS[name]`` is a
``ModelEntry`` with the builder, the training recipe, the loss and the name of the PyTorch twin.
"""
import warnings

from .models import REGISTRY, ModelEntry
from .models.alexnet import AlexNet, alexnet
from .models.googlenet import GoogLeNet, googlenet, googlenet_loss
from .models.lenet5 import LeNet5, lenet5
from .models.mobilenet_v1 import MobileNetV1, mobilenet_v1
from .models.mobilenet_v2 import MobileNetV2, mobilenet_v2
from .models.resnet import ResNet, resnet18
from .models.vgg import VGG, vgg16
from .summary import print_summary, summary

# ``zoo.summary`` is the function (imported above) and ``python -m zoo.summary`` the same file run as a script.
# runpy warns that the package already imported that file; running it twice is harmless (it only defines
# functions), so the warning is silenced for this one module.
warnings.filterwarnings("ignore", message="'zoo.summary' found in sys.modules", category=RuntimeWarning)

# name -> ModelEntry (builder, recipe, loss, twin), in the order the course meets them: zoo/models/registry.py.
MODELS = REGISTRY


def get_model(name, in_channels=3, num_classes=10, **kwargs):
    """Build the model registered as ``name``; extra keyword arguments go to its builder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, **kwargs)


__all__ = ["MODELS", "REGISTRY", "AlexNet", "GoogLeNet", "LeNet5", "MobileNetV1", "MobileNetV2", "ModelEntry",
           "ResNet", "VGG", "alexnet", "get_model", "googlenet", "googlenet_loss", "lenet5", "mobilenet_v1",
           "mobilenet_v2", "print_summary", "resnet18", "summary", "vgg16"]
