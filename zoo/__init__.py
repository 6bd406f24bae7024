"""The model zoo: seven classic CNNs adapted to 32x32 inputs, built only from ``minitorch_cnn`` layers.

    import zoo
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10)
    print(zoo.summary(model, (3, 32, 32)))

The models live in ``zoo/models/``, one file each; each file's docstring says how and why it departs from
its paper for 32x32 inputs. ``zoo/models/registry.py`` is the one table of models: ``MODELS[name]`` is a
``ModelEntry`` with the builder, the training recipe, the loss and the name of the PyTorch twin.
"""
# ruff: noqa: E402
import os
import signal
import sys
import warnings


def _exit_quietly_on_ctrl_c_while_loading():
    """``python -m zoo.X``: a Ctrl-C while the libraries load (Numba alone takes a second or more) ends with
    one line and exit 130, not a traceback from inside an import; ``ZooParser.run`` puts Python's own
    handler back before any work starts. ``import zoo`` anywhere else (a notebook, a test) is left alone."""
    argv = getattr(sys, "orig_argv", [])
    if "-m" not in argv[:-1] or not argv[argv.index("-m") + 1].startswith("zoo."):
        return

    def interrupted(signum, frame):
        os.write(2, b"interrupted\n")
        os._exit(130)            # nothing has been written yet: there is nothing to save or clean up
    try:
        signal.signal(signal.SIGINT, interrupted)
    except ValueError:           # not the main thread: signals cannot be handled there
        pass


_exit_quietly_on_ctrl_c_while_loading()

# The imports below come after the handler on purpose (ruff: E402 is off in this file): they are the slow part.
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
