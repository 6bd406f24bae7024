"""Learning parity: a zoo model and its PyTorch twin trained side by side, from the same initial weights, on
the same batches in the same order, with the same recipe. The curves should lie on top of each other.

    python -m benchmarks.learning_parity --data-dir ../shared/data                  # lenet5/mnist, resnet18/cifar10
    python -m benchmarks.learning_parity --pairs lenet5:mnist --limit-train 10000 --epochs 3
    python -m benchmarks.learning_parity --quick --verify structure --data-dir DIR   # seconds, for the tests

Single steps are checked in tests/zoo/test_zoo.py; this shows what those small float32 differences become over
whole epochs. The recipe is the model's zoo.train default (optimizer, lr, momentum, weight decay, cosine
schedule over --epochs), built for us by zoo.run.recipe and for PyTorch by torch.optim. The batches come from
one minitorch DataLoader (shuffled and, for CIFAR-10, augmented by the seed) and are fed to both. Models with
dropout (alexnet, vgg16, googlenet) draw different masks in the two frameworks and are refused.

Writes ``learning_parity.json`` (per-epoch metrics of both), ``learning_parity.png`` (objective, top-1 and
top-5 error: minitorch solid, PyTorch dashed, one colour per split) and ``learning_parity.md`` (the final
errors side by side) to --out. Needs torch (the dev extra).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn.data import DataLoader, load_dataset
from minitorch_cnn.files import atomic_write_text
from zoo import MODELS, get_model
from zoo.run.config import recipe_of
from zoo.run.loop import Position, evaluate, topk_correct, train_epoch
from zoo.run.plots import log_scale_if_spread, pyplot, save_png
from zoo.run.recipe import make_loss, make_optimizer, make_scheduler

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"limit_train": 64, "limit_test": 32, "epochs": 2, "batch_size": 16}


def has_dropout(model_name):
    """Whether the zoo model has a Dropout layer (alexnet, vgg16, googlenet): its masks differ between frameworks."""
    return any(isinstance(m, mt.nn.Dropout) for m in get_model(model_name).modules())


def recipe(model, dataset, args):
    config = {**recipe_of(model), "model": model, "dataset": dataset, "aux_weight": None}
    config.update(epochs=args.epochs, batch_size=args.batch_size or config["batch_size"], lr=args.lr or config["lr"])
    return config


def twin_of(model, ours, in_channels):
    import torch
    sys.path.insert(0, str(ROOT / "tests"))
    from support.torch_twins import TWINS
    twin = TWINS[model](in_channels=in_channels, num_classes=10)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    return twin


def torch_training(twin, config):
    import torch
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
               "adadelta": torch.optim.Adadelta, "rmsprop": torch.optim.RMSprop}[config["optimizer"]]
    extra = {"momentum": config["momentum"]} if config["optimizer"] in ("sgd", "rmsprop") else {}
    opt = opt_cls(twin.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], **extra)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config["epochs"]) \
        if config["schedule"] == "cosine" else None
    return opt, schedule


def torch_epoch(twin, opt, loader, epoch, label_smoothing):
    """One epoch of the twin on the loader's batches for ``epoch``; (loss, top-1 error, top-5 error)."""
    import torch
    import torch.nn.functional as TF
    twin.train()
    loader.set_epoch(epoch)
    loss_sum = correct = correct5 = seen = 0
    for x, y in loader:
        logits = twin(torch.from_numpy(x))
        loss = TF.cross_entropy(logits, torch.from_numpy(y), label_smoothing=label_smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        scores = logits.detach().numpy()
        loss_sum += loss.item() * len(y)
        correct += int((scores.argmax(1) == y).sum())
        correct5 += topk_correct(scores, y, 5)
        seen += len(y)
    return loss_sum / seen, 1 - correct / seen, 1 - correct5 / seen


def torch_evaluate(twin, loader):
    import torch
    import torch.nn.functional as TF
    twin.eval()
    loss_sum = correct = correct5 = seen = 0
    with torch.no_grad():
        for x, y in loader:
            logits = twin(torch.from_numpy(x))
            loss_sum += TF.cross_entropy(logits, torch.from_numpy(y)).item() * len(y)
            scores = logits.numpy()
            correct += int((scores.argmax(1) == y).sum())
            correct5 += topk_correct(scores, y, 5)
            seen += len(y)
    return loss_sum / seen, 1 - correct / seen, 1 - correct5 / seen


def run_pair(model, dataset, args):
    """Train both; per epoch and framework: train loss, top-1, top-5, test loss, top-1, top-5, seconds."""
    if has_dropout(model):
        raise SystemExit(f"{model} has dropout, whose masks differ between the frameworks; "
                         f"choose one of {', '.join(name for name in MODELS if not has_dropout(name))}")
    kw = {"data_dir": args.data_dir, "download": False, "verify": args.verify, "stratified": True}
    train_set = load_dataset(dataset, "train", limit=args.limit_train, **kw)
    test_set = load_dataset(dataset, "test", limit=args.limit_test, **kw)
    config = recipe(model, dataset, args)
    config["augment"] = dataset == "cifar10"
    mt.manual_seed(args.seed)
    ours = get_model(model, in_channels=train_set.in_channels, num_classes=len(train_set.classes))
    twin = twin_of(model, ours, train_set.in_channels)
    optimizer, loss_fn = make_optimizer(list(ours.parameters()), config), make_loss(config)
    scheduler = make_scheduler(optimizer, config)
    opt_t, schedule_t = torch_training(twin, config)
    loader = DataLoader(train_set, config["batch_size"], shuffle=True, seed=args.seed, augment=config["augment"])
    test_loader = DataLoader(test_set, config["batch_size"])
    history = {"minitorch": [], "torch": []}
    for epoch in range(config["epochs"]):
        started = time.perf_counter()
        position = train_epoch(ours, loader, optimizer, loss_fn, Position(epoch=epoch), desc=f"ours {epoch + 1}")
        test = evaluate(ours, test_loader, len(train_set.classes))
        history["minitorch"].append({"epoch": epoch + 1, "train_loss": position.loss,
                                     "train_top1_err": 1 - position.accuracy, "train_top5_err": position.top5_error,
                                     "test_loss": test["loss"], "test_top1_err": test["top1_err"],
                                     "test_top5_err": test["top5_err"], "seconds": time.perf_counter() - started})
        started = time.perf_counter()
        train_t = torch_epoch(twin, opt_t, loader, epoch, config["label_smoothing"])
        test_t = torch_evaluate(twin, test_loader)
        history["torch"].append({"epoch": epoch + 1, **dict(zip(("train_loss", "train_top1_err", "train_top5_err",
                                                                 "test_loss", "test_top1_err", "test_top5_err"),
                                                                train_t + test_t)),
                                 "seconds": time.perf_counter() - started})
        for s in (scheduler, schedule_t):
            if s is not None:
                s.step()
        ours_row, torch_row = history["minitorch"][-1], history["torch"][-1]
        print(f"{model}/{dataset} epoch {epoch + 1}: test top-1 error minitorch {ours_row['test_top1_err']:.2%} "
              f"torch {torch_row['test_top1_err']:.2%}; train loss {ours_row['train_loss']:.4f} vs "
              f"{torch_row['train_loss']:.4f}", flush=True)
    return {"model": model, "dataset": dataset, "train_images": len(train_set), "test_images": len(test_set),
            "recipe": {k: config[k] for k in ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                                              "schedule", "label_smoothing", "augment")},
            "seed": args.seed, "history": history}


def plot(path, results):
    plt = pyplot()
    if plt is None:
        return
    panels = (("loss", "objective (cross-entropy)"), ("top1_err", "top-1 error (%)"), ("top5_err", "top-5 error (%)"))
    fig, axes = plt.subplots(len(results), 3, figsize=(14, 3.8 * len(results)), squeeze=False)
    for row, result in zip(axes, results):
        for ax, (key, label) in zip(row, panels):
            for framework, style in (("minitorch", "-"), ("torch", "--")):
                hist = result["history"][framework]
                epochs = [h["epoch"] for h in hist]
                for split, colour in (("train", "C0"), ("test", "C1")):
                    scale = 1 if key == "loss" else 100
                    ax.plot(epochs, [scale * h[f"{split}_{key}"] for h in hist], style, color=colour, marker="o",
                            markersize=3, label=f"{framework} {split}")
            ax.set(xlabel="epoch", ylabel=label, title=f"{result['model']} on {result['dataset']}: {label}")
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        log_scale_if_spread(row[0])
        row[0].legend(fontsize=8)
    fig.suptitle("minitorch-cnn (solid) and its PyTorch twin (dashed): same initial weights, batches and recipe")
    fig.tight_layout()
    save_png(fig, plt, path)


def markdown(results):
    lines = ["| model | dataset | train / test images | epochs | batch | lr | framework | final test top-1 err | "
             "top-5 err | test loss | final train loss | time (s) |", "|---" * 12 + "|"]
    for r in results:
        for framework in ("minitorch", "torch"):
            h = r["history"][framework]
            lines.append(f"| {r['model']} | {r['dataset']} | {r['train_images']} / {r['test_images']} | "
                         f"{len(h)} | {r['recipe']['batch_size']} | {r['recipe']['lr']:g} | {framework} | "
                         f"{100 * h[-1]['test_top1_err']:.2f} % | "
                         f"{100 * h[-1]['test_top5_err']:.2f} % | {h[-1]['test_loss']:.4f} | "
                         f"{h[-1]['train_loss']:.4f} | {sum(e['seconds'] for e in h):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning_parity", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", nargs="+", default=["lenet5:mnist", "resnet18:cifar10"], metavar="MODEL:DATASET")
    p.add_argument("--data-dir")
    p.add_argument("--verify", choices=("checksum", "structure"), default="checksum")
    p.add_argument("--limit-train", type=int, default=2000)
    p.add_argument("--limit-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, help="default: the model's recipe")
    p.add_argument("--lr", type=float, help="initial learning rate; default: the model's recipe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help=f"tiny sizes for the tests: {QUICK}")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    results = [run_pair(*pair.split(":"), args) for pair in args.pairs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "learning_parity.json", json.dumps({"results": results}, indent=1) + "\n")
    atomic_write_text(out / "learning_parity.md", markdown(results))
    plot(out / "learning_parity.png", results)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
