"""Run ``python -m zoo.train MODEL mnist --device cuda`` end to end under the strict CuPy stand-in and print
what each training step cost at the device boundary, as counted by support/standin_ledger.py.

    python tests/gpu_standin/probe.py resnet18 --batch 128 --steps 3 [--sites] [--plant]

Data: a generated MNIST folder of ``batch * steps`` training images (never the network). A step is marked
where the loop moves its batch to the device (zoo.run.loop.to_model_device) and ends where the next one
begins (the last at the end of the epoch), so the counts are those of the whole step: forward, loss,
backward, optimizer, scores. ``--plant`` hands the model a host batch inside the loop: it must fail.
The last line printed is JSON: {"steps": [{kind: count, ...}, ...], "sites": {...}} (sites of the second
step, or the first when there is one).
"""
import argparse
import json
import runpy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[0:0] = [str(ROOT)]
sys.path.append(str(ROOT / "tests"))

from support import strict_cupy  # noqa: E402  (the stand-in goes in before minitorch_cnn is imported)

strict_cupy.install()

import numpy as np  # noqa: E402
from support.formats import IDX_FILES, write_idx_gz  # noqa: E402
from support.standin_ledger import LEDGER  # noqa: E402


def write_mnist(folder, n_train, n_test):
    """An MNIST-format folder: class k lights rows 2k..2k+5 (as support.formats.write_mnist), any size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 50, (n, 28, 28)).astype(np.uint8)
        for k in range(10):
            images[labels == k, 2 * k:2 * k + 6, 4:24] = 255
        write_idx_gz(folder / IDX_FILES[split][0], images)
        write_idx_gz(folder / IDX_FILES[split][1], labels)


def instrument(plant):
    """Mark a step at every training batch's move to the device; with ``plant``, move nothing (a host batch
    reaches the model, as a forgotten ``.to(device)`` would)."""
    from minitorch_cnn import Tensor
    from zoo.run import loop, trainer
    training = [False]
    to_device, train_epoch = loop.to_model_device, loop.train_epoch

    def marked(model, x):
        if training[0]:
            LEDGER.mark()
        return Tensor(x, device="cpu") if plant else to_device(model, x)

    def epoch(*args, **kwargs):
        training[0] = True
        try:
            return train_epoch(*args, **kwargs)
        finally:
            training[0] = False
            LEDGER.mark()    # the last step ends with the epoch (the next "step" is the test pass: dropped)

    loop.to_model_device = marked
    trainer.train_epoch = epoch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sites", action="store_true", help="print every call site of the second step")
    parser.add_argument("--plant", action="store_true")
    args = parser.parse_args()
    instrument(args.plant)
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist(Path(tmp) / "mnist", args.batch * args.steps, 10)
        sys.argv = ["zoo.train", args.model, "mnist", "--device", "cuda", "--epochs", "1", "--batch-size",
                    str(args.batch), "--limit-test", "10", "--verify", "structure", "--no-download",
                    "--data-dir", tmp, "--out", str(Path(tmp) / "run")]
        code = 0
        try:
            runpy.run_module("zoo.train", run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code or 0
        steps = LEDGER.step_events()[:-1]            # the slice after the final mark is the test pass
        one = steps[1] if len(steps) > 1 else (steps[0] if steps else [])
        sites = {k: LEDGER.sites(k, one) for k in ("sync", "h2d", "hidden", "host_to_kernel")}
        if args.sites:
            sites.update(launch=LEDGER.sites("launch", one), op=LEDGER.sites("op", one))
        print(json.dumps({"code": code, "steps": LEDGER.per_step()[:len(steps)], "sites": sites}))
        sys.exit(code)


if __name__ == "__main__":
    main()
