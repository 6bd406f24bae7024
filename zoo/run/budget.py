"""``--time-budget MINUTES``: train for a fixed amount of training time instead of a number of epochs.

    python -m zoo.train googlenet cifar10 --time-budget 20 --epochs 100    # 20 min of training, at most 100 epochs

This is how models of very different cost are compared at one compute budget: each gets the same training
time, and the table reports the accuracy it reached and how much data it saw in that time.

What counts: the seconds of the training steps (forward, backward, update and the wait for the batch,
``Position.seconds``), summed over epochs and over resumed invocations (``spent_s`` is in the checkpoint).
The test passes between epochs do not count. The run stops at the first batch boundary where the budget is
spent, or when the schedule has run its steps (below), or after ``--epochs`` epochs (a cap: give a large one).
Then it saves the checkpoint, evaluates the WHOLE test set whatever ``--limit-test`` says for the epochs'
test passes, and records the steps, images and epochs seen (metrics.csv's last row, config.json's "budget").

The schedule runs per step over the budgeted steps, so a cosine reaches its end when the time does. The
number of steps is not known in advance: the first CALIBRATION_STEPS steps after the first one (which carries
Numba's compilation) are timed, and the schedule's length is fixed from them at
``steps so far + remaining time / seconds per step`` (at most ``--epochs`` epochs of steps). Until then the
learning rate is the configured one (a cosine is within 0.1 % of it over the first 1 % of its length). The
length is then saved in the checkpoint, so a resumed run keeps it; the run stops at the end of the schedule
even if time is left (the learning rate is 0 there), and at the end of the time even if steps are left
(``stopped`` says which: "budget" or "schedule end"; "epochs" when the cap came first, the time left unused:
raise ``--epochs``).
"""
import math
from dataclasses import asdict, dataclass

from .recipe import STEP_GAMMA, STEP_PARTS

CALIBRATION_STEPS = 10


class BudgetSpent(Exception):
    """Raised at a batch boundary when the time (or the schedule's steps) of a budgeted run is spent."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Budget:
    """The state of a budgeted run, saved in the checkpoint's meta as ``budget``."""
    minutes: float
    spent_s: float = 0.0               # training seconds of the epochs completed before the current one
    schedule_steps: int | None = None  # the schedule's length, fixed after the calibration
    step_seconds: float | None = None  # measured seconds per step (the calibration)
    stopped: str | None = None         # "budget", "schedule end" or "epochs" once finished

    def __post_init__(self):
        self._mark = None              # (steps, seconds) where the calibration started (not saved)

    @classmethod
    def from_dict(cls, saved, minutes):
        return cls(**{**(saved or {}), "minutes": minutes})

    def to_dict(self):
        return asdict(self)

    @property
    def seconds(self):
        return self.minutes * 60

    def spent(self, position):
        return self.spent_s + position.seconds

    def calibrate(self, steps, spent, cap):
        """Fix the schedule's length once CALIBRATION_STEPS steps after the first have been timed."""
        if self.schedule_steps is not None:
            return
        if self._mark is None:
            self._mark = (steps, spent)      # after the first step of this process: compilation is done
            return
        timed = steps - self._mark[0]
        if timed >= CALIBRATION_STEPS:
            self.step_seconds = (spent - self._mark[1]) / timed
            remaining = max(self.seconds - spent, 0.0)
            self.schedule_steps = min(steps + int(remaining / max(self.step_seconds, 1e-9)), cap)

    def after_step(self, steps, position, cap):
        """Called after every training step (``steps`` done in all): calibrate, then BudgetSpent if done."""
        spent = self.spent(position)
        self.calibrate(steps, spent, cap)
        if spent >= self.seconds:
            self.schedule_steps = self.schedule_steps or steps   # spent before the calibration ended
            raise BudgetSpent("budget")
        if self.schedule_steps is not None and steps >= self.schedule_steps:
            # a schedule as long as the --epochs cap ends with it: the cap, not the time, stopped the run
            raise BudgetSpent("epochs" if self.schedule_steps == cap else "schedule end")


def lr_at(config, steps, schedule_steps):
    """The learning rate after ``steps`` steps of a schedule ``schedule_steps`` long (None: not yet known,
    the configured rate). Closed form, so a resumed run computes exactly what an uninterrupted one does."""
    base = config["lr"]
    if schedule_steps is None or config["schedule"] == "none":
        return base
    t = min(steps, schedule_steps) / schedule_steps
    if config["schedule"] == "step":
        return base * STEP_GAMMA ** min(int(t * STEP_PARTS), STEP_PARTS - 1)
    return base * (1 + math.cos(math.pi * t)) / 2


class BudgetGuard:
    """What ``train_epoch`` calls after each batch in place of the CtrlC object: Ctrl-C first (a Ctrl-C
    saves like without a budget), then the budget (BudgetSpent), then the next step's learning rate."""

    def __init__(self, ctrl_c, run):
        self.ctrl_c, self.run = ctrl_c, run

    def check(self):
        self.ctrl_c.check()
        self.run.after_step()


def budget_record(budget, position, steps, images, train_images, test_images):
    """config.json's "budget": what the run did with its time (``train_seconds``: all of it, the epoch the
    budget stopped in included; ``spent_s``: the completed epochs', as the checkpoint keeps it)."""
    return {**budget.to_dict(), "train_seconds": budget.spent(position), "steps": steps, "images_seen": images,
            "epochs_seen": images / train_images if train_images else None, "full_test_images": test_images}
