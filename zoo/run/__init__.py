"""Training runs: a ``TrainConfig`` (recipe + options, new or resumed) and ``train(config)`` that runs it.

    from zoo.run import TrainConfig, train
    result = train(TrainConfig.new("lenet5", "mnist", epochs=2, limit_train=1000))
    print(result.status, result.last["test_top1_err"])

    config.py      TrainConfig: the recipes, the defaults, the checks of a resumed run
    options.py     the value checks shared with the command lines and the study specs
    trainer.py     train(config) -> TrainResult: build, restore, train, checkpoint, report
    evaluation.py  evaluate_checkpoint(path): a saved run on a test set (python -m zoo.evaluate)
    loop.py        one epoch, one test pass, Ctrl-C and divergence
    recipe.py      the optimizer, schedule and loss a configuration names
    data.py        the dataset splits and the device of a run
    checkpoint.py  the .npz checkpoint (no pickle, written atomically)
    report.py      config.json, metrics.csv, the printed lines;  plots.py  the run's figures
    provenance.py  each invocation's commit, BLAS kernel, CPU/ISA, threads, versions, data checksums
    budget.py      --time-budget MINUTES: stop when the training time is spent, a per-step schedule
    ablate.py      a model with some modules replaced by identities, checked before training

``python -m zoo.train`` and ``python -m zoo.evaluate`` are thin command lines over these; ``zoo.studies``
builds TrainConfigs from a spec and calls ``train`` for each.
"""
from .config import TrainConfig
from .options import UsageError
from .trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "UsageError", "train"]
