"""``TrainConfig``: everything a training run needs to know, its defaults resolved, new or resumed.

    config = TrainConfig.new("resnet18", "cifar10", epochs=5, lr=0.05)     # the recipe, then these options
    config = TrainConfig.resumed("runs/r18", "resnet18", "cifar10", epochs=10)   # continue that run
    result = zoo.run.train(config)

An option left out (or None) takes the model's recipe (``zoo.MODELS[model].recipe``, zoo/models/registry.py;
with another optimizer than the recipe's, that optimizer's usual lr, ``OPTIMIZER_LR``). A resumed run keeps
its saved configuration: only ``RESUME_MAY_CHANGE`` may differ, any other option given must equal the saved
value. Bad values and contradictions raise ``UsageError`` with one line naming the option as the command line
spells it.
``to_dict()`` is what config.json and the checkpoint record.
"""
import json
import sys
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

from minitorch_cnn.data import DATASETS
from minitorch_cnn.data.registry import get_info
from zoo.models.init import INITS

from . import options as check
from .checkpoint import FILENAME, read_meta
from .options import OPTIMIZERS, SCHEDULES, VERIFY_CHOICES, UsageError
from .recipe import STEP_GAMMA, step_size

# With another optimizer than the model's, the lr defaults to that optimizer's usual value instead.
OPTIMIZER_LR = {"sgd": 0.01, "adam": 1e-3, "adagrad": 1e-2, "adadelta": 1.0, "rmsprop": 1e-3}
WITH_MOMENTUM = ("sgd", "rmsprop")
# Options a resumed run may change; every other one must match the saved run.
RESUME_MAY_CHANGE = ("epochs", "device", "tf32", "data_dir", "verify", "download")

# The options a caller (a command line, a study spec) may set, each with the check of its value.
OPTION_CHECKS = {
    "epochs": check.positive_int, "batch_size": check.positive_int, "optimizer": check.choice(OPTIMIZERS),
    "lr": check.positive_float, "momentum": check.unit_float, "nesterov": check.switch,
    "weight_decay": check.natural_float, "schedule": check.choice(SCHEDULES),
    "label_smoothing": check.unit_float, "aux_weight": check.natural_float, "main_weight": check.positive_float,
    "augment": check.switch, "limit_train": check.positive_int, "limit_test": check.positive_int,
    "ablate": check.module_names, "seed": check.natural_int, "out": check.text, "device": check.device_name,
    "data_dir": check.text, "verify": check.choice(VERIFY_CHOICES), "download": check.switch,
    "time_budget": check.positive_float, "init": check.choice(INITS), "tf32": check.switch,
}


@dataclass
class TrainConfig:
    """A complete run configuration (build it with ``new`` or ``resumed``); field order = config.json's."""
    model: str
    dataset: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float | None          # None: adam, adagrad and adadelta have none
    nesterov: bool
    weight_decay: float
    schedule: str
    label_smoothing: float
    aux_weight: float | None        # GoogLeNet only
    main_weight: float | None       # GoogLeNet only
    augment: bool
    limit_train: int | None
    limit_test: int | None
    seed: int
    ablate: list
    out: str
    device: str = "cpu"
    data_dir: str | None = None
    verify: str = "checksum"
    download: bool = True
    time_budget: float | None = None  # minutes of training time (budget.py); epochs is then a cap
    init: str = "default"             # the models' initialisation (zoo/models/init.py)
    tf32: bool = False                # float32 GEMMs on a GPU may use TF32 (minitorch_cnn/config.py)
    step_size: int | None = None    # the step schedule only
    step_gamma: float | None = None
    in_channels: int | None = None  # known once the data is loaded
    num_classes: int | None = None
    resume: bool = field(default=False, repr=False)   # continue the checkpoint in ``out``

    # ---- building one

    @classmethod
    def new(cls, model, dataset, force=False, **options):
        """A new run: ``options`` (None = default) over the model's recipe. ``force``: write into an
        ``out`` folder that holds other files than a run's (they are kept, but config.json, metrics.csv
        and the figures are replaced)."""
        options = checked(options)
        model, dataset = check_names(model, dataset)
        without = "".join(f"-without-{name}" for name in options.get("ablate") or [])
        without += "-kaiming" if options.get("init") == "kaiming" else ""
        out = options.get("out") or Path("runs") / f"{model}-{dataset}{without}-{datetime.now():%Y%m%d-%H%M%S}"
        if (Path(out) / FILENAME).exists():
            raise UsageError(f"{out} already holds a checkpoint; add --resume to continue it, "
                             "or choose another --out")
        check_out_folder(Path(out), force)
        return cls(**resolve_new(model, dataset, {**options, "out": str(out)}))

    @classmethod
    def resumed(cls, out, model=None, dataset=None, **options):
        """Continue the run in ``out`` (its checkpoint's saved configuration); ``model`` and ``dataset``,
        when given, must be the saved ones, and so must every option outside RESUME_MAY_CHANGE."""
        options = checked(options)
        if model is not None and dataset is not None:
            model, dataset = check_names(model, dataset)
        if not out:
            raise UsageError("--resume needs --out DIR, the run folder to continue")
        meta = read_meta(Path(out) / FILENAME)
        model, dataset = check_names(model or meta["model"], dataset or meta["dataset"])
        if (meta["model"], meta["dataset"]) != (model, dataset):
            raise UsageError(f"the checkpoint in {out} is for {meta['model']} on {meta['dataset']}, "
                             f"not {model} on {dataset}")
        return cls.from_dict({**resolve_resumed(meta["config"], options), "out": str(out)}, resume=True)

    @classmethod
    def from_dict(cls, saved, resume=False):
        """The configuration config.json or a checkpoint recorded (keys of older versions filled in)."""
        known = {f.name for f in fields(cls)} - {"resume"}
        values = {"nesterov": False, "main_weight": None, "ablate": [],
                  **{k: v for k, v in saved.items() if k in known}}
        values["ablate"] = values["ablate"] or []
        return cls(**values, resume=resume)

    def to_dict(self):
        """The dict config.json and the checkpoint record: the step-schedule and data keys only when set."""
        record = asdict(self)
        del record["resume"]
        for key in ("time_budget", "step_size", "step_gamma", "in_channels", "num_classes"):
            if record[key] is None:
                del record[key]
        return record


# ----------------------------------------------------------------------------- resolution

RUN_FILES = ("config.json", "metrics.csv", "curves.png", "confusion_matrix.png", "confusion_matrix.csv")


def is_run_config(path):
    """True if ``path`` is a config.json written by zoo.train (a run that stopped before its checkpoint)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"model", "dataset", "invocations"} <= document.keys()


def check_out_folder(out, force):
    """UsageError unless ``out`` is absent, empty, or a run of this tool (or ``force``): a folder of the
    user's own files is never written into silently."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if force or not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in RUN_FILES)
    if others or ((out / "config.json").exists() and not is_run_config(out / "config.json")):
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "") if others else "config.json"
        raise UsageError(f"--out {out} is not empty and not a zoo.train run folder (it holds {shown}); "
                         "choose a new or empty folder, or add --force to write the run's files into it")


def checked(options):
    """``options`` without the Nones, each value checked (UsageError naming the option as typed)."""
    unknown = sorted(set(options) - set(OPTION_CHECKS))
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}; the options: {', '.join(OPTION_CHECKS)}")
    out = {}
    for name, value in options.items():
        if value is None:
            continue
        try:
            out[name] = OPTION_CHECKS[name](value)
        except TypeError as err:          # a flag given a value, or a value given true/false
            raise UsageError(f"{name} {err}") from None
        except ValueError as err:
            raise UsageError(f"argument --{name.replace('_', '-')}: {err}") from None
    return out


def check_names(model, dataset):
    """The canonical model and dataset names; UsageError listing the valid ones."""
    import zoo  # the registry tests extend, looked up at call time
    if model not in zoo.MODELS:
        raise UsageError(f"unknown model {model!r}; valid models: {', '.join(zoo.MODELS)}")
    return model, check_dataset(dataset)


def check_dataset(dataset):
    """The canonical dataset name; UsageError listing the valid ones."""
    try:
        return get_info(dataset).name
    except ValueError:
        raise UsageError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}") from None


def recipe_of(model):
    """The training defaults of ``model``: its entry in the zoo's registry (zoo/models/registry.py)."""
    import zoo
    return zoo.MODELS[model].recipe


def resolve_new(model, dataset, options):
    """Options over the model's recipe: the complete configuration of a new run, as a dict."""
    recipe = recipe_of(model)
    auxiliary = "aux_weight" in recipe     # a model with auxiliary heads (GoogLeNet) says so in its recipe
    optimizer = options.get("optimizer", recipe["optimizer"])
    same_optimizer = optimizer == recipe["optimizer"]
    if "momentum" in options and optimizer not in WITH_MOMENTUM:
        raise UsageError(f"--momentum applies to {' and '.join(WITH_MOMENTUM)} only, not {optimizer}")
    if options.get("nesterov") and optimizer != "sgd":
        raise UsageError(f"--nesterov applies to sgd only, not {optimizer}")
    for name in ("aux_weight", "main_weight"):
        if name in options and not auxiliary:
            print(f"warning: --{name.replace('_', '-')} only applies to googlenet; ignored for {model}",
                  file=sys.stderr)
    epochs = options.get("epochs", recipe["epochs"])
    momentum = None
    if optimizer in WITH_MOMENTUM:
        momentum = options.get("momentum", recipe["momentum"] if same_optimizer else 0.0)
    if options.get("nesterov") and not momentum:
        raise UsageError("--nesterov needs a momentum > 0 (--momentum)")
    config = {
        "model": model, "dataset": dataset, "epochs": epochs,
        "batch_size": options.get("batch_size", recipe["batch_size"]), "optimizer": optimizer,
        "lr": options.get("lr", recipe["lr"] if same_optimizer else OPTIMIZER_LR[optimizer]),
        "momentum": momentum, "nesterov": bool(options.get("nesterov")),
        "weight_decay": options.get("weight_decay", recipe["weight_decay"]),
        "schedule": options.get("schedule", recipe["schedule"]),
        "label_smoothing": options.get("label_smoothing", recipe["label_smoothing"]),
        "aux_weight": options.get("aux_weight", recipe.get("aux_weight")) if auxiliary else None,
        "main_weight": options.get("main_weight", 1.0) if auxiliary else None,
        "augment": dataset == "cifar10" and options.get("augment") is not False,
        "limit_train": options.get("limit_train"), "limit_test": options.get("limit_test"),
        "seed": options.get("seed", 0), "ablate": options.get("ablate") or [], "out": options["out"],
        "time_budget": options.get("time_budget"), "init": options.get("init", "default"),
    }
    config.update(environment(options, config))
    if config["schedule"] == "step":
        config["step_size"], config["step_gamma"] = step_size(epochs), STEP_GAMMA
    return config


def environment(options, saved):
    """The options that may differ between a run and its resumption: given ones first, then ``saved``."""
    return {"epochs": options.get("epochs") or saved.get("epochs"),
            "device": options.get("device") or saved.get("device") or "cpu",
            "tf32": bool(options["tf32"] if options.get("tf32") is not None else saved.get("tf32", False)),
            **data_options(options, saved)}


def data_options(options, saved):
    """Where and how to find the data: ``options`` first, then ``saved`` (the run resumed or evaluated),
    then the defaults."""
    download = options.get("download")
    return {"data_dir": options.get("data_dir") or saved.get("data_dir"),
            "verify": options.get("verify") or saved.get("verify") or "checksum",
            "download": download if download is not None else saved.get("download", True)}


def resolve_resumed(saved, options):
    """The saved configuration, after checking that ``options`` do not contradict it."""
    for name, value in options.items():
        if name in saved and name not in RESUME_MAY_CHANGE + ("out",) and saved[name] != value:
            raise UsageError(f"--resume continues with the saved configuration: --{name.replace('_', '-')} "
                             f"{value} differs from the saved {saved[name]} (use a new --out to change it)")
    config = {**saved, **environment(options, saved)}
    if config["schedule"] == "step":
        config["step_size"] = step_size(config["epochs"])
    return config
