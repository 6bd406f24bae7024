"""Studies: a grid of training runs from a TOML spec, and their report.

    spec = load_spec("zoo/studies/optimizers.toml", protocol="cpu")    # spec.py: runs checked as TrainConfigs
    run_study(spec, Path("runs/study-optimizers-cpu"))                  # runner.py: train(config) per run
    write_report(Path("runs/study-optimizers-cpu"))                     # report.py, plots.py

The specs shipped with the zoo sit beside this code (``optimizers.toml``, ``architectures.toml``,
``ablation.toml``); ``python -m zoo.study`` is the command line over these functions.
"""
from .report import write_report
from .runner import run_study
from .spec import SpecError, load_spec, train_config

__all__ = ["SpecError", "load_spec", "run_study", "train_config", "write_report"]
