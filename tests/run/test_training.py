"""The training loop's pieces against computations made here: the test metrics on known logits, GoogLeNet's
loss on real outputs, the CIFAR-10 augmentation of the batches, and a short run that must learn."""
import numpy as np
import pytest
import torch
from support.formats import write_cifar
from support.numerics import reference_metrics

import minitorch_cnn as mt
import zoo
from minitorch_cnn import Tensor, nn
from minitorch_cnn.data import DataLoader, Dataset, load_dataset
from zoo import train as train_cli
from zoo.run import loop, recipe
from zoo.run.trainer import prepare

# ----------------------------------------------------------------------------- test metrics


class KnownLogits(nn.Module):
    """Returns the stored logits row of each input: image i is filled with the number i."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return Tensor(self.logits[x.numpy()[:, 0, 0, 0].astype(int)])


@pytest.mark.parametrize("classes", [10, 3], ids=["10-classes", "3-classes-k-over-classes"])
def test_evaluate_against_plain_python_on_known_logits(classes):
    rng = np.random.default_rng(classes)
    n = 50
    logits = rng.integers(0, 3, (n, classes)).astype(np.float32)    # scores 0, 1, 2: ties everywhere
    target = rng.integers(0, classes, n)
    index = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32)
    batches = [(index[i:i + 16], target[i:i + 16]) for i in range(0, n, 16)]     # the last one is short
    result = loop.evaluate(KnownLogits(logits), batches, classes)

    top1_err, top5_err, confusion = reference_metrics(logits, target, k=5)
    assert (result["images"], result["top1_err"], result["top5_err"]) == (n, top1_err, top5_err)
    assert np.array_equal(result["confusion"], confusion) and result["accuracy"] == pytest.approx(1 - top1_err)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(), torch.from_numpy(target))
    assert result["loss"] == pytest.approx(loss.item(), rel=1e-6)
    if classes == 3:
        assert top5_err == 0.0          # k = 5 > 3 classes: every row counts
    else:
        assert 0 < top1_err < 1 and 0 < top5_err < top1_err
        ties = sum(row.tolist().count(row[t]) > 1 for row, t in zip(logits, target))
        assert ties > n // 2            # the tie rule decides many rows


# ----------------------------------------------------------------------------- GoogLeNet's loss

@pytest.mark.parametrize("options, aux_weight, smoothing", [([], 0.3, 0.0),
                                                            (["--aux-weight", "0.5", "--label-smoothing", "0.1"],
                                                             0.5, 0.1)], ids=["defaults", "weight-and-smoothing"])
def test_googlenet_loss_is_main_plus_weighted_auxiliaries(tmp_path, options, aux_weight, smoothing):
    args = train_cli.build_parser().parse_args(["googlenet", "cifar10", *options, "--out", str(tmp_path)])
    loss_fn = recipe.make_loss(train_cli.config_from(args).to_dict())
    mt.manual_seed(0)
    model = zoo.get_model("googlenet").train()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = np.array([3, 7])
    output = model(Tensor(x))
    assert isinstance(output, tuple) and len(output) == 3

    def ce(logits):
        return torch.nn.functional.cross_entropy(torch.from_numpy(logits.numpy()).double(), torch.from_numpy(y),
                                                 label_smoothing=smoothing).item()

    main, aux1, aux2 = (ce(o) for o in output)
    assert min(abs(main - aux1), abs(main - aux2)) > 1e-3     # three different heads
    assert loss_fn(output, y).item() == pytest.approx(main + aux_weight * (aux1 + aux2), rel=1e-5)


# ----------------------------------------------------------------------------- CIFAR-10 augmentation

@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_cifar(root / "cifar10" / "cifar-10-batches-bin")
    return root


def served(cifar_dir, tmp_path, *options):
    """The uint8 images of one epoch of the training and the test batches zoo.train would serve."""
    args = train_cli.build_parser().parse_args(
        ["lenet5", "cifar10", "--data-dir", str(cifar_dir), "--verify", "structure", "--no-download",
         "--batch-size", "8", "--out", str(tmp_path / "run"), *options])
    run = prepare(train_cli.config_from(args), mt.device("cpu"))
    data = run.train_loader.dataset
    mean, std = np.array(data.mean).reshape(1, 3, 1, 1), np.array(data.std).reshape(1, 3, 1, 1)

    def pixels(loader):
        loader.set_epoch(0)
        return np.concatenate([np.rint((x * std + mean) * 255) for x, _ in loader]).astype(np.uint8)

    return run.config.to_dict(), pixels(run.train_loader), pixels(run.test_loader)


def shifted_and_flipped(images, padding=4):
    """{bytes of every zero-padded crop and mirror of each image: (index of the image, top, left, flip)}."""
    h, w = images.shape[2:]
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = {}
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, :, top:top + h, left:left + w]
            for i, image in enumerate(crop):
                out[image.tobytes()] = (i, top, left, False)
                out[image[..., ::-1].tobytes()] = (i, top, left, True)
    return out


def test_cifar_augmentation_only_in_training_seeded_and_switchable(cifar_dir, tmp_path):
    raw = {split: load_dataset("cifar10", split, data_dir=cifar_dir, download=False, verify="structure").images
           for split in ("train", "test")}
    variants = shifted_and_flipped(raw["train"])
    config, train, test = served(cifar_dir, tmp_path)
    assert config["augment"] is True and len(train) == len(raw["train"])
    assert np.array_equal(test, raw["test"])                                   # test batches as they are
    drawn = [variants[im.tobytes()] for im in train]                  # (image, top, left, flip) served
    assert sorted(d[0] for d in drawn) == list(range(len(train)))     # each image once, each one of its crops
    assert sum(d[1:] != (4, 4, False) for d in drawn) >= len(train) // 2                 # cropped or flipped

    assert np.array_equal(served(cifar_dir, tmp_path / "again")[1], train)              # same seed, same crops
    other = [variants[im.tobytes()][1:] for im in served(cifar_dir, tmp_path / "seed1", "--seed", "1")[1]]
    assert sum(a != b[1:] for a, b in zip(other, drawn)) >= len(train) // 2             # another seed: others
    config, plain, plain_test = served(cifar_dir, tmp_path / "off", "--no-augment")
    assert config["augment"] is False and np.array_equal(plain_test, raw["test"])
    assert sorted(plain.tobytes() for plain in plain) == sorted(im.tobytes() for im in raw["train"])


# ----------------------------------------------------------------------------- it learns

def blobs(n, rng, templates):
    """Class k: template k (a fixed random +-1 8x8 pattern) at +-40 grey levels under pixel noise of sd 60."""
    labels = rng.integers(0, len(templates), n)
    images = 128 + 40 * templates[labels] + rng.normal(0, 60, (n, 1, 8, 8))
    return Dataset(np.clip(images, 0, 255).astype(np.uint8), labels, [str(k) for k in range(10)], (0.5,), (0.25,))


def test_a_few_hundred_steps_learn():
    """300 SGD steps on generated data: a wrong gradient sign or a broken optimizer cannot pass this.

    Measured: training loss 0.014, test loss 0.12, test accuracy 96.5 %; the same run without momentum
    stops at 0.42 / 0.48 / 92.5 %, so even that fails the training-loss bound."""
    rng = np.random.default_rng(0)
    templates = rng.choice([-1.0, 1.0], (10, 1, 8, 8))
    train, test = blobs(640, rng, templates), blobs(200, rng, templates)
    mt.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    config = {"optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "label_smoothing": 0.0,
              "model": "blobs"}
    optimizer, loss_fn = recipe.make_optimizer(list(model.parameters()), config), recipe.make_loss(config)
    loader = DataLoader(train, 32, shuffle=True, seed=0)
    before = loop.evaluate(model, DataLoader(test, 100), 10)
    for epoch in range(15):                                      # 20 batches an epoch
        last = loop.train_epoch(model, loader, optimizer, loss_fn, loop.Position(epoch=epoch))
    after = loop.evaluate(model, DataLoader(test, 100), 10)
    assert before["loss"] > 2.0 and before["accuracy"] < 0.3     # chance: ln 10 = 2.30, 10 %
    assert last.loss < 0.1 and after["loss"] < 0.3 and after["accuracy"] > 0.9, (last.loss, after)
