"""Step through a zoo model one layer at a time: ``python -m zoo.step MODEL``.

    python -m zoo.step resnet18                             # the photo that ships with matplotlib
    python -m zoo.step lenet5 --dataset mnist --index 3     # an MNIST test digit (needs the files)
    python -m zoo.step googlenet --train --gradcheck --out steps/   # aux heads, checks, PNGs

Prints the stepper's table (minitorch_cnn.lab.Stepper); ``--gradcheck`` checks every step's backward
against finite differences on a float64 copy; ``--out DIR`` writes one feature-map PNG per step.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

from minitorch_cnn.lab import Stepper, sample_image

from . import MODELS, get_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m zoo.step", description=__doc__.split("\n")[0])
    p.add_argument("model", choices=list(MODELS))
    p.add_argument("--dataset", default="photo", help="photo (default), mnist, fashion-mnist or cifar10")
    p.add_argument("--index", type=int, default=0, help="which test image of --dataset")
    p.add_argument("--image", help="a PNG/JPEG file instead of --dataset")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: MINITORCH_DATA, cache)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--train", action="store_true", help="training mode: dropout, batch statistics, aux heads")
    p.add_argument("--gradcheck", action="store_true", help="check every step's backward")
    p.add_argument("--samples", type=int, default=16, help="elements per tensor each gradcheck samples")
    p.add_argument("--out", help="folder for one feature-map PNG per step")
    return p.parse_args(argv)


def save_figure(fig, path):
    """Write a PNG atomically: a temporary file in the same folder, then a rename."""
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=80)
        os.chmod(tmp, 0o644)        # mkstemp makes it private; a figure is for everyone to read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    grey = args.dataset in ("mnist", "fashion-mnist") and not args.image
    x, label = sample_image(args.image or args.dataset, index=args.index, data_dir=args.data_dir,
                            channels=1 if grey else 3)
    model = get_model(args.model, in_channels=x.shape[1], num_classes=args.num_classes)
    model.train(args.train)
    st = Stepper(model, x)
    print(f"{args.model} on {args.image or args.dataset} (label {label}), {'train' if args.train else 'eval'} mode, "
          f"{len(st)} steps")
    print(st)
    failed = 0
    if args.gradcheck:
        for s in st:
            result = s.gradcheck(samples=args.samples)
            failed += not result.passed
            print(result)
        print(f"gradcheck: {len(st) - failed} of {len(st)} steps passed")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for s in st:
            save_figure(s.show(), out / f"{s.index:03d}_{s.name.replace(':', '_')}.png")
        print(f"wrote {len(st)} feature-map PNGs to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
