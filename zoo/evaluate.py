"""Evaluate a checkpoint of ``zoo.train`` on a test set: ``python -m zoo.evaluate CHECKPOINT [options]``.

    python -m zoo.evaluate runs/lenet5-mnist-20250101-120000              # the run folder, or
    python -m zoo.evaluate runs/lenet5-mnist-20250101-120000/checkpoint.npz --data-dir ~/data
    python -m zoo.evaluate runs/lenet5-mnist-.../ --dataset fashion-mnist    # another dataset, same shapes

Prints the test loss (plain cross-entropy), the top-1 and top-5 error, and the accuracy of every class.
The data options default to those the run was trained with (except --device, which defaults to cpu).
"""
import sys

from minitorch_cnn import backend
from minitorch_cnn.data import DataError, DataLoader
from minitorch_cnn.data.registry import DATASETS, get_info

from . import cli, get_model
from .ablate import remove_modules
from .checkpoint import CheckpointError, load_checkpoint, resolve_path
from .cli import OneLineParser, UsageError, add_data_options, check_channels, load_split, positive_int, select_device
from .report import per_class_lines
from .training import StopTraining, evaluate


def build_parser():
    p = OneLineParser(prog="python -m zoo.evaluate", description="Evaluate a zoo.train checkpoint on a test set.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz, or the run folder that holds one")
    p.add_argument("--dataset", help="evaluate on this dataset instead of the one trained on "
                                     f"(one of: {', '.join(DATASETS)}; same channels and classes)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    add_data_options(p)
    return p


def build_model(meta, model_state, num_classes):
    if num_classes != meta["num_classes"]:
        raise UsageError(f"the model has {meta['num_classes']} classes but the test set has {num_classes}")
    model = get_model(meta["model"], in_channels=meta["in_channels"], num_classes=num_classes)
    remove_modules(model, meta["config"].get("ablate") or [])   # trained without these (--ablate)
    try:
        model.load_state_dict(model_state)
    except ValueError as err:
        raise CheckpointError(f"the checkpoint's weights do not fit {meta['model']}: {err}") from None
    return model


def describe(meta):
    position = meta["position"]
    done = f"{position['epoch']} epoch(s)"
    if position["batch"]:
        done += f" and {position['batch']} batch(es)"
    return f"{meta['model']} trained on {meta['dataset']} for {done}"


def report(meta, path, dataset, result, classes):
    print(f"checkpoint     {path} ({describe(meta)})")
    print(f"test set       {dataset}, {result['images']} images")
    print(f"test loss      {result['loss']:.4f}")
    print(f"top-1 error    {result['top1_err']:.2%}  (accuracy {result['accuracy']:.2%})")
    print(f"top-5 error    {result['top5_err']:.2%}")
    print("per-class accuracy:")
    print("\n".join(per_class_lines(result["confusion"], classes)))


def run(args):
    path = resolve_path(args.checkpoint)
    meta, model_state, _ = load_checkpoint(path)
    dataset = meta["dataset"]
    if args.dataset is not None:
        try:
            dataset = get_info(args.dataset).name
        except ValueError:
            raise UsageError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(DATASETS)}") from None
    select_device(args.device or "cpu")
    test_set = load_split(dataset, "test", cli.data_config(args, meta["config"]), args.limit_test)
    check_channels(meta["in_channels"], test_set)
    model = build_model(meta, model_state, len(test_set.classes))
    if args.device == "cuda":
        model.to("cuda")
    result = evaluate(model, DataLoader(test_set, args.batch_size), len(test_set.classes))
    report(meta, path, dataset, result, test_set.classes)
    return 0


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (bad input), 2 (bad option), 130 (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (UsageError, CheckpointError, DataError, OSError) as err:  # OSError: e.g. --out is not writable
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, StopTraining):
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        backend.set_backend("numpy")


if __name__ == "__main__":
    sys.exit(main())
