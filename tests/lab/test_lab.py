"""The stepper (minitorch_cnn.lab): every zoo model steps end to end, functional ops are steps,
gradcheck catches a planted wrong backward, im2col() is the matrix really multiplied, zoo.step runs."""
import numpy as np
import pytest
from support.formats import write_idx_gz

import zoo
from minitorch_cnn import Tensor, manual_seed, nn
from minitorch_cnn.data import DatasetNotFoundError
from minitorch_cnn.data import datasets as datasets_module
from minitorch_cnn.functional import activation, tensor_ops
from minitorch_cnn.lab import Stepper, sample_image
from zoo import step as step_cli


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No user data folder, no cache, no system folder: only what the test writes."""
    monkeypatch.delenv("MINITORCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets_module, "SYSTEM_ROOTS", {})


def photo():
    return sample_image("photo")[0]


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_zoo_model_steps_and_matches_its_own_output(name):
    manual_seed(0)
    model = zoo.get_model(name, in_channels=3, num_classes=10).eval()
    x = photo()
    st = Stepper(model, x)
    own = model(x).numpy()
    np.testing.assert_array_equal(st.output.numpy(), own)
    np.testing.assert_array_equal(st[-1].output, own)
    assert len(st) >= 10 and len(set(st.names)) == len(st)           # every step has its own name
    for earlier, later in zip(st, st[1:]):
        assert earlier.index + 1 == later.index
    leaf_names = {n for n, m in model.named_modules() if not list(m.children())}
    assert {s.name.split(":")[0] for s in st if s.kind[0].isupper()} <= leaf_names


def test_functional_ops_are_steps():
    x = photo()
    resnet = Stepper(zoo.get_model("resnet18").eval(), x)
    adds = resnet.find("add")
    assert [s.name for s in adds][:2] == ["layer1.0.add", "layer1.1.add"] and len(adds) == 8
    add = resnet["layer2.0.add"]
    np.testing.assert_allclose(add.output, add.inputs[0] + add.inputs[1], rtol=1e-6)
    assert type(add.module).__name__ == "BasicBlock"
    mnv2 = Stepper(zoo.get_model("mobilenet_v2").eval(), x)
    assert len(mnv2.find("add")) == 10                      # stride-1, same-width inverted residuals
    google = zoo.get_model("googlenet").train()
    train = Stepper(google, x)
    cats = train.find("cat")
    assert len(cats) == 9 and cats[0].output.shape[1] == 256   # inception 3a: 64 + 128 + 32 + 32
    assert any(n.startswith("aux1.") for n in train.names) and any(n.startswith("aux2.") for n in train.names)
    evaluation = Stepper(google.eval(), x)
    assert not any(n.startswith("aux") for n in evaluation.names)


class Block(nn.Module):
    """conv -> ReLU6 -> conv, plus the input: a leaf of each kind the stepper must handle."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU6()
        self.conv2 = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x))) + x


def small_stepper(scale=20.0):
    manual_seed(1)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32) * scale)
    return Stepper(Block(), x)


def test_gradcheck_passes_on_correct_backward_and_fails_on_planted_ones(monkeypatch):
    st = small_stepper()
    assert [s.kind for s in st] == ["Conv2d", "ReLU6", "Conv2d", "add"]
    assert 0 < st["act"].stats()["saturated_fraction"] < 1     # inputs beyond 6 exist, so the mask matters
    for s in st:
        result = s.gradcheck(samples=16)
        assert result.passed and result.max_error < 1e-7, str(result)
    # planted: ReLU6 forgets its mask (the gradient flows through clipped units)
    monkeypatch.setattr(activation.ReLU6, "backward", lambda self, gy: gy)
    bad = small_stepper()["act"].gradcheck(samples=32)
    assert not bad.passed and "FAIL" in str(bad)
    # planted: the residual add doubles its gradient
    monkeypatch.setattr(tensor_ops.Add, "backward", lambda self, gy: (2 * gy, 2 * gy))
    assert not small_stepper()["add"].gradcheck(samples=8).passed


def test_gradcheck_reseeds_dropout():
    manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.Dropout(0.5)).train()
    st = Stepper(model, Tensor(np.random.default_rng(1).standard_normal((2, 20)).astype(np.float32)))
    assert st["1"].stats()["zero_fraction"] > 0.2
    assert st["1"].gradcheck(samples=16).passed


def test_im2col_is_the_matrix_the_convolution_multiplies():
    x = photo()
    convs = [nn.Conv2d(3, 8, 3, stride=2, padding=1),           # im2col
             nn.Conv2d(3, 8, 1),                                 # pointwise: the input itself
             nn.Conv2d(3, 6, 3, padding=1, groups=3)]            # depthwise
    paths = []
    for conv in convs:
        s = Stepper(conv, x)[0]
        view = s.im2col()
        paths.append(view.path)
        y = view.weight_matrix @ view.cols                       # (F, L) or (G, F/G, L)
        n, f, ho, wo = s.output.shape
        y = y.reshape(f, n, ho, wo).transpose(1, 0, 2, 3) + conv.bias.numpy().reshape(1, -1, 1, 1)
        np.testing.assert_allclose(y, s.output, rtol=1e-5, atol=1e-5)
        assert str(view).startswith(f"path {view.path}")
    assert paths == ["im2col", "pointwise", "depthwise"]
    st = small_stepper()
    assert st["act"].im2col() is None and st["conv1"].im2col_shape() == (27, 36)


def test_backward_gives_every_step_its_output_gradient():
    st = small_stepper(scale=1.0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 10))
    st = Stepper(model, Tensor(st.x.data, requires_grad=True))   # so that Flatten, first, is in the graph
    loss = st.backward(3)
    logits = st["1"].output.astype(np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert loss == pytest.approx(-np.log(p[0, 3]), rel=1e-5)
    p[0, 3] -= 1                                                  # d cross-entropy / d logits = softmax - onehot
    np.testing.assert_allclose(st["1"].grad_output, p, rtol=1e-5, atol=1e-7)
    assert st["0"].grad_output.shape == (1, 108)
    assert st.plot_grads() is not None and st.grad_norms()["1"] > 0


def test_table_time_and_figures():
    st = small_stepper()
    text = str(st)
    assert "conv1" in text and "add" in text and "27x36" in text and text.count("\n") == len(st) + 1
    assert "<table>" in st._repr_html_()
    t = st["conv1"].time(repeat=2)
    assert t["forward_ms"] > 0 and t["backward_ms"] > 0
    assert st["conv1"].show() is not None and st["conv1"].filters() is not None
    for figure in (st["conv1"].show(), st["conv1"].filters()):       # what a notebook displays: a PNG
        assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="act.*ReLU6"):
        st["act"].filters()
    with pytest.raises(KeyError, match="did you mean"):
        st["conv"]


def test_sample_image_from_generated_official_files(tmp_path, no_data):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([4, 1, 7, 0, 9], dtype=np.uint8)
    (tmp_path / "mnist").mkdir()
    for split in ("train", "t10k"):
        write_idx_gz(tmp_path / "mnist" / f"{split}-images-idx3-ubyte.gz", images)
        write_idx_gz(tmp_path / "mnist" / f"{split}-labels-idx1-ubyte.gz", labels)
    x, label = sample_image("mnist", index=2, data_dir=tmp_path, verify="structure")
    assert label == 7 and x.shape == (1, 1, 32, 32) and x.dtype == np.float32
    expected = (images[2] / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(x.numpy()[0, 0, 2:30, 2:30], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(DatasetNotFoundError, match="cifar10 files are not here.*MINITORCH_DATA"):
        sample_image("cifar10", data_dir=tmp_path)
    with pytest.raises(IndexError, match="out of range"):
        sample_image("mnist", index=5, data_dir=tmp_path, verify="structure")


def test_sample_image_photo_and_files(tmp_path):
    x, label = sample_image("photo")
    assert x.shape == (1, 3, 32, 32) and label is None and abs(float(x.numpy().mean())) < 3
    big, _ = sample_image("photo", size=None, channels=1)
    assert big.shape[:2] == (1, 1) and min(big.shape[2:]) > 200
    from PIL import Image
    Image.fromarray(np.full((40, 50, 3), 255, np.uint8)).save(tmp_path / "white.png")
    x, _ = sample_image(str(tmp_path / "white.png"))
    np.testing.assert_allclose(x.numpy()[0, :, 0, 0], (1 - np.array([0.4914, 0.4822, 0.4465])) /
                               np.array([0.2470, 0.2435, 0.2616]), rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="no image file"):
        sample_image(str(tmp_path / "missing.png"))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="not a readable"):
        sample_image(str(tmp_path / "broken.jpg"))


def test_zoo_step_cli_end_to_end(tmp_path, capsys):
    assert step_cli.main(["lenet5", "--gradcheck", "--samples", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "features.conv1" in out and "12 of 12 steps passed" in out
    assert len(list(tmp_path.glob("*.png"))) == 12


def test_recording_leaves_no_hooks_behind_even_when_forward_fails():
    from minitorch_cnn import autograd
    st = small_stepper()
    assert autograd.call_hooks == [] and all(not m._forward_hooks and not m._forward_pre_hooks
                                             for m in st.model.modules())
    with pytest.raises(ValueError):
        Stepper(nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2)), Tensor(np.ones((1, 4), np.float32)))
    assert autograd.call_hooks == []
