"""Step through a zoo model one layer at a time: ``python -m zoo.step MODEL``.

    python -m zoo.step resnet18                             # the photo that ships with matplotlib
    python -m zoo.step lenet5 --dataset mnist --index 3     # an MNIST test digit (needs the files)
    python -m zoo.step googlenet --train --gradcheck --out steps/   # aux heads, checks, PNGs
    python -m zoo.step resnet18 --backward 3 --html resnet18.html  # one self-contained web page

Prints the stepper's table (minitorch_cnn.lab.Stepper); ``--gradcheck`` checks every step's backward
against finite differences on a float64 copy; ``--out DIR`` writes one feature-map PNG per step;
``--html FILE`` writes the stepper as one web page (Stepper.to_html: times are medians of ``--repeat``
runs); ``--backward LABEL`` adds the gradient of the loss for class LABEL at every step.
This file is the command line only: the Stepper does the work.
"""
import sys
import time
from pathlib import Path

import minitorch_cnn as mt
from minitorch_cnn.data import DataError
from minitorch_cnn.files import atomic_write
from minitorch_cnn.lab import Stepper, sample_image

from . import MODELS, get_model
from .cli import UsageError, ZooParser, natural_int_arg, positive_int_arg

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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
    p.add_argument("--html", help="write the stepper as one self-contained web page to this file")
    p.add_argument("--repeat", type=positive_int_arg, default=3, help="runs per step whose median --html shows")
    p.add_argument("--backward", type=natural_int_arg, metavar="LABEL",
                   help="backward from the loss for class LABEL: gradients per step (table, --html)")
    return p


def load_input(args):
    """(x, label) of --image or --dataset/--index; every bad value becomes one UsageError line."""
    if args.image:
        path = Path(args.image)
        if not path.is_file():
            raise UsageError(f"--image: no file at {path}")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UsageError(f"--image: expected a PNG or JPEG file ({', '.join(IMAGE_SUFFIXES)}), got {path}")
    grey = args.dataset in ("mnist", "fashion-mnist") and not args.image
    try:
        return sample_image(args.image or args.dataset, index=args.index, data_dir=args.data_dir,
                            channels=1 if grey else 3)
    except (ValueError, IndexError) as err:   # unknown dataset, --index out of range, unreadable image
        raise UsageError(f"{err}") from None
    except DataError as err:                    # the files are missing: the first line says so and where
        raise UsageError(str(err).splitlines()[0]) from None


def check_outputs(args):
    """Refuse before the (slow) stepper runs: --out must be a folder, --html a file in an existing folder."""
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out: expected a folder for the PNGs, got the file {args.out}")
    if args.html:
        html = Path(args.html)
        if html.is_dir():
            raise UsageError(f"--html: expected a file name, got the folder {html}")
        if not html.parent.is_dir():
            raise UsageError(f"--html: the folder {html.parent} does not exist")


def save_figure(fig, path):
    """Write a PNG atomically (readers never see half a file): ``minitorch_cnn.files.atomic_write``."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=80))


def run(args):
    try:
        where = mt.device(args.device or "cpu")
    except RuntimeError as err:   # "cuda" without CuPy or a GPU
        raise UsageError(str(err)) from None
    check_outputs(args)
    x, label = load_input(args)
    if args.backward is not None and args.backward >= args.num_classes:
        raise UsageError(f"--backward: expected a class label below --num-classes {args.num_classes}, "
                         f"got {args.backward}")
    model = get_model(args.model, in_channels=x.shape[1], num_classes=args.num_classes)
    model.train(args.train)
    st = Stepper(model, x, device=where)
    print(f"{args.model} on {args.image or args.dataset} (label {label}), {'train' if args.train else 'eval'} mode, "
          f"{len(st)} steps")
    if args.backward is not None:
        print(f"loss for class {args.backward}: {st.backward(args.backward):.4f}")
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
    if args.html:
        started = time.perf_counter()
        page = st.to_html(args.html, repeat=args.repeat, gradcheck=args.gradcheck, samples=args.samples,
                          title=f"{args.model} on {args.image or args.dataset}")
        print(f"wrote {args.html} ({len(page) / 1e6:.2f} MB) in {time.perf_counter() - started:.1f} s")
    return 1 if failed else 0


def main(argv=None):
    """The command line. Returns the exit status: 0, 1 (a failed gradcheck, or bad input), 2 (bad option)."""
    return build_parser().run(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
