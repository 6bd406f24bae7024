"""What a run's configuration names, built: the optimizer, the learning-rate schedule and the loss.

    optimizer = make_optimizer(list(model.parameters()), config)     # config: a TrainConfig or its dict
    scheduler = make_scheduler(optimizer, config)                    # None for schedule 'none'
    loss_fn = make_loss(config)                                      # loss_fn(output, target) -> Tensor
"""
from minitorch_cnn import optim
from minitorch_cnn.optim import lr_scheduler
from zoo import MODELS
from zoo.models.registry import cross_entropy_loss

STEP_GAMMA = 0.1  # the step schedule divides the learning rate by 10 ...
STEP_PARTS = 3    # ... after each third of the epochs


def make_optimizer(params, config):
    """The optimizer named by ``config['optimizer']`` with the configured hyper-parameters."""
    name, lr, wd = config["optimizer"], config["lr"], config["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=wd,
                         nesterov=config.get("nesterov", False))
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=config["momentum"], weight_decay=wd)
    builders = {"adam": optim.Adam, "adagrad": optim.Adagrad, "adadelta": optim.Adadelta}
    return builders[name](params, lr=lr, weight_decay=wd)


def step_size(epochs):
    return max(1, epochs // STEP_PARTS)


def make_scheduler(optimizer, config, completed_epochs=0):
    """The learning-rate schedule, advanced past ``completed_epochs`` epochs (None for 'none').

    On resume the schedule is *replayed* from the configured learning rate rather than loaded: the
    cosine and step schedules depend on the total number of epochs, which ``--resume --epochs N`` may
    change, and replaying performs exactly the float operations an uninterrupted run performs.
    """
    for group in optimizer.param_groups:
        group["lr"] = config["lr"]
        group.pop("initial_lr", None)
    if config["schedule"] == "none":
        return None
    if config["schedule"] == "step":
        scheduler = lr_scheduler.StepLR(optimizer, step_size(config["epochs"]), gamma=STEP_GAMMA)
    else:
        scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    for _ in range(completed_epochs):
        scheduler.step()
    return scheduler


def make_loss(config):
    """``loss(output, target)``: the registered model's loss (cross-entropy with label smoothing; GoogLeNet
    adds its auxiliary heads); a model outside the registry (a notebook's own) gets the cross-entropy."""
    entry = MODELS.get(config["model"])
    return (cross_entropy_loss if entry is None else entry.loss)(config)
