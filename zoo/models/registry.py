"""The zoo's one table of models: each model's name, builder, training recipe, loss and PyTorch twin.

    from zoo.models import REGISTRY
    entry = REGISTRY["resnet18"]
    model = entry.builder(in_channels=3, num_classes=10)      # or entry(in_channels=3, num_classes=10)
    entry.recipe["lr"]                                        # 0.1: what `python -m zoo.train` uses by default
    loss_fn = entry.loss(config)                              # loss_fn(output, target) -> scalar Tensor

Everything that needs "every model" (``zoo.get_model``, ``python -m zoo.train``'s defaults, the tests'
twins and parameter counts, the benchmarks' model lists) reads this table, so adding a model is: its file in
``zoo/models/``, one line in ``REGISTRY`` below, its twin in ``tests/support/torch_twins.py`` and its
parameter count in ``tests/zoo/test_zoo.py``.
"""
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from minitorch_cnn import functional as F

from .alexnet import alexnet
from .googlenet import googlenet, googlenet_loss
from .lenet5 import lenet5
from .mobilenet_v1 import mobilenet_v1
from .mobilenet_v2 import mobilenet_v2
from .resnet import resnet18
from .vgg import vgg16

# ----------------------------------------------------------------------------- losses built from a run's config
# ``config`` is the training run's resolved configuration (zoo.train's config.json): ``label_smoothing``
# always, ``aux_weight`` and ``main_weight`` for GoogLeNet.


def cross_entropy_loss(config):
    """``loss(logits, target)``: softmax cross-entropy with the config's label smoothing.

    logits: (N, num_classes), target: (N,) class indices -> scalar Tensor (the batch mean).
    """
    return partial(F.cross_entropy, label_smoothing=config["label_smoothing"])


def googlenet_training_loss(config):
    """``loss(output, target)``: ``googlenet_loss`` (main + weighted auxiliary heads), each head's term a
    cross-entropy with the config's label smoothing. A missing or None ``main_weight`` means 1 (the paper)."""
    return partial(googlenet_loss, aux_weight=config["aux_weight"], main_weight=config.get("main_weight") or 1.0,
                   criterion=cross_entropy_loss(config))


# ----------------------------------------------------------------------------- recipes
# The recipe each model trains with when no option overrides it. LeNet-5 is tuned for MNIST-like data;
# the others follow the usual CIFAR-10 recipe: SGD with momentum 0.9, weight decay 5e-4, cosine schedule.
CIFAR_RECIPE = {"epochs": 30, "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                "weight_decay": 5e-4, "schedule": "cosine", "label_smoothing": 0.0}
RECIPE_KEYS = tuple(CIFAR_RECIPE)   # every recipe has these; GoogLeNet's also has "aux_weight"


@dataclass(frozen=True)
class ModelEntry:
    """One model of the zoo.

    name         the name on the command line and in ``zoo.get_model`` ("resnet18")
    builder      ``builder(in_channels=3, num_classes=10, **kwargs) -> nn.Module``
    recipe       the training defaults of ``python -m zoo.train`` (``RECIPE_KEYS``, plus GoogLeNet's
                 ``aux_weight``); shared by every run: copy it (``dict(entry.recipe)``) before changing it
    loss         ``loss(config) -> loss_fn``, with ``loss_fn(output, target)`` the training loss
    twin         the class name of its PyTorch twin in tests/support/torch_twins.py
    description  one line for listings
    """
    name: str
    builder: Callable
    recipe: dict
    loss: Callable
    twin: str
    description: str

    def __call__(self, in_channels=3, num_classes=10, **kwargs):
        """Build the model: an entry can stand wherever a builder is expected."""
        return self.builder(in_channels=in_channels, num_classes=num_classes, **kwargs)


# name -> ModelEntry, in the order the course meets them.
REGISTRY = {entry.name: entry for entry in [
    ModelEntry("lenet5", lenet5, {**CIFAR_RECIPE, "epochs": 10, "batch_size": 64}, cross_entropy_loss, "LeNet5",
               "LeNet-5 (1998): two 5x5 convs, average pools, three FC layers; 62 K parameters"),
    ModelEntry("alexnet", alexnet, {**CIFAR_RECIPE, "lr": 0.01},      # no BatchNorm: a larger lr diverges
               cross_entropy_loss, "AlexNet", "AlexNet (2012): five 3x3 convs, three FC layers with dropout"),
    ModelEntry("vgg16", vgg16, dict(CIFAR_RECIPE), cross_entropy_loss, "VGG16",
               "VGG-16 with BatchNorm (2015): thirteen 3x3 convs in five stages"),
    ModelEntry("googlenet", googlenet, {**CIFAR_RECIPE, "aux_weight": 0.3}, googlenet_training_loss, "GoogLeNet",
               "GoogLeNet / Inception v1 (2015): nine Inception modules, two auxiliary classifiers"),
    ModelEntry("mobilenet_v1", mobilenet_v1, dict(CIFAR_RECIPE), cross_entropy_loss, "MobileNetV1",
               "MobileNet v1 (2017): depthwise-separable convolutions"),
    ModelEntry("mobilenet_v2", mobilenet_v2, dict(CIFAR_RECIPE), cross_entropy_loss, "MobileNetV2",
               "MobileNet v2 (2018): inverted residuals with linear bottlenecks"),
    ModelEntry("resnet18", resnet18, {**CIFAR_RECIPE, "lr": 0.1}, cross_entropy_loss, "ResNet18",
               "ResNet-18 (2016): residual BasicBlocks in four stages"),
]}
