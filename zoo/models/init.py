"""The initialisation a run's models start from: ``--init default|kaiming`` (zoo.train, study specs).

    model = zoo.get_model("vgg16")
    initialise(model, "kaiming")       # in place; returns the model

default  what each builder does: PyTorch's default for every layer (``nn.init.default_init_``: Kaiming-
         uniform with a = sqrt(5), i.e. weights ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))), except ResNet-18,
         whose builder already uses the Kaiming scheme below (as torchvision's ResNet does).
kaiming  He et al. 2015 as torchvision's ResNet and VGG use it: every Conv2d weight ~ N(0, 2 / fan_out) with
         fan_out = out_channels x kh x kw (``kaiming_normal_(mode="fan_out", nonlinearity="relu")``) and
         conv biases 0; batch norm keeps weight 1 and bias 0 (as built) and Linear layers their default.

Why it matters: PyTorch's default shrinks each ReLU layer's output variance by about 3 (its std is
1/sqrt(3 fan_in), Kaiming's sqrt(2/fan)), so a deep stack without batch norm starts with almost constant
logits: VGG-16 without BN spreads its logits across inputs by ~5e-8 at the default init and by ~1e-3 with
Kaiming (the standard deviation over 8 Gaussian images, mean over the 10 logits, seed 0).
The draws come from ``minitorch_cnn.random`` after the model is built, so a seed fixes them.
"""
from minitorch_cnn import nn

INITS = ("default", "kaiming")


def initialise(model, scheme="default"):
    """Re-initialise ``model``'s layers in place as ``scheme`` (one of INITS) says; returns the model."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; expected one of {', '.join(INITS)}")
    if scheme == "kaiming":
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model
