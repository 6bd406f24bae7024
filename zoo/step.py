"""Step through a zoo model one layer at a time: ``python -m zoo.step MODEL``.

    python -m zoo.step resnet18                             # the photo that ships with matplotlib
    python -m zoo.step lenet5 --dataset mnist --index 3     # an MNIST test digit (needs the files)
    python -m zoo.step googlenet --train --gradcheck --out steps/   # aux heads, checks, PNGs

Prints the stepper's table (minitorch_cnn.lab.Stepper); ``--gradcheck`` checks every step's backward
against finite differences on a float64 copy; ``--out DIR`` writes one feature-map PNG per step.
This file is the command line only: the Stepper does the work.
"""
import sys
from pathlib import Path

import minitorch_cnn as mt
from minitorch_cnn.files import atomic_write
from minitorch_cnn.lab import Stepper, sample_image

from . import MODELS, get_model
from .cli import UsageError, ZooParser, positive_int_arg


def build_parser():
    p = ZooParser("python -m zoo.step", __doc__.split("\n")[0])
    p.add_argument("model", choices=list(MODELS))
    p.add_argument("--dataset", default="photo", help="photo (default), mnist, fashion-mnist or cifar10")
    p.add_argument("--index", type=int, default=0, help="which test image of --dataset")
    p.add_argument("--image", help="a PNG/JPEG file instead of --dataset")
    p.add_data_dir_option("folder holding the dataset files (default: MINITORCH_DATA, cache)")
    p.add_device_option()
    p.add_argument("--num-classes", type=positive_int_arg, default=10)
    p.add_argument("--train", action="store_true", help="training mode: dropout, batch statistics, aux heads")
    p.add_argument("--gradcheck", action="store_true", help="check every step's backward")
    p.add_argument("--samples", type=positive_int_arg, default=16, help="elements per tensor each gradcheck samples")
    p.add_argument("--out", help="folder for one feature-map PNG per step")
    return p


def save_figure(fig, path):
    """Write a PNG atomically (readers never see half a file): ``minitorch_cnn.files.atomic_write``."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=80))


def run(args):
    try:
        where = mt.device(args.device or "cpu")
    except RuntimeError as err:   # "cuda" without CuPy or a GPU
        raise UsageError(str(err)) from None
    grey = args.dataset in ("mnist", "fashion-mnist") and not args.image
    x, label = sample_image(args.image or args.dataset, index=args.index, data_dir=args.data_dir,
                            channels=1 if grey else 3)
    model = get_model(args.model, in_channels=x.shape[1], num_classes=args.num_classes)
    model.train(args.train)
    st = Stepper(model, x, device=where)
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


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (a failed gradcheck, or bad input), 2 (bad option)."""
    return build_parser().run(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
