"""Learning-rate schedules: change ``group["lr"]`` of an optimizer as training goes on.

Usage, once per epoch::

    for epoch in range(epochs):
        train_one_epoch(model, optimizer)   # calls optimizer.step() many times
        scheduler.step()

The learning rate a scheduler sets is the one the *next* epoch trains with.
"""
import copy
import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class. A subclass says, in ``get_lr``, what the learning rates become at
    epoch ``last_epoch``. ``step()`` advances ``last_epoch`` and writes them into the
    optimizer's parameter groups.

    The constructor records each group's starting lr as ``group["initial_lr"]``
    (kept if already there, e.g. from a loaded checkpoint) and takes the first step,
    to epoch 0, which leaves the learning rates unchanged.
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def get_lr(self):
        """The learning rate of every parameter group at epoch ``last_epoch``."""
        raise NotImplementedError

    def step(self):
        """Move to the next epoch and set the optimizer's learning rates for it."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (which saves itself)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "optimizer"})

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs::

        lr(epoch) = base_lr · gamma^⌊epoch / step_size⌋

    Computed step by step (multiply the current lr at each multiple of step_size),
    as torch does, so that it composes with anything else that changes the lr.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not (isinstance(step_size, int) and step_size >= 1):
            raise ValueError(f"StepLR: invalid step_size={step_size!r} (must be a positive integer)")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Follow half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs::

        lr(t) = η_min + ½·(base_lr − η_min)·(1 + cos(π·t / T_max))

    Past ``T_max`` the curve continues, rising back to ``base_lr`` at ``2·T_max``.

    Like torch, we compute it recursively: each epoch rescales the current
    distance to η_min by the ratio of consecutive closed-form values::

        lr(t) = η_min + (lr(t−1) − η_min) · (1 + cos(π·t/T_max)) / (1 + cos(π·(t−1)/T_max))

    When the previous epoch was a minimum (cos = −1) that ratio is 0/0, so there we
    add the closed-form difference instead.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not (isinstance(T_max, int) and T_max >= 1):
            raise ValueError(f"CosineAnnealingLR: invalid T_max={T_max!r} (must be a positive integer)")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if t == 0:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # the previous epoch sat at the minimum
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]
