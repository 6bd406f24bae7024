"""zoo.summary: the Keras-style layer table (minitorch_cnn/lab/layer_table.py) and its command line.

Its conv columns read the same ConvPlan as conv2d and the Stepper (tests/lab/test_conv_plan_agreement.py).
"""
import copy
import subprocess
import sys

import numpy as np
from support.torch_twins import TWINS

import minitorch_cnn as mt
import zoo
from minitorch_cnn.kernels import cpu as cpu_kernels
from zoo.summary import layer_table


def test_summary_lenet5_line_by_line():
    n, b4 = 64, 64 * 4       # batch size and bytes per float32 image-element for that batch
    text = zoo.summary(zoo.get_model("lenet5", in_channels=1), (1, 32, 32), batch_size=n)
    lines = text.splitlines()
    rows = [[c for c in line.split("  ") if c.strip()] for line in lines[4:16]]
    rows = [[c.strip() for c in r] for r in rows]
    conv1_out, conv2_out = 6 * 28 * 28, 16 * 10 * 10
    expected = [
        # name (type), output shape, params, MACs per image, im2col bytes for the batch
        # conv1 and conv2 run the direct kernel (6 and 16 filters; 1.25 M and 0.96 M column elements at batch 64):
        # no column matrix
        ["features.conv1 (Conv2d: direct)", "(None, 6, 28, 28)", 1 * 25 * 6 + 6, conv1_out * 1 * 25, 0],
        ["features.relu1 (ReLU)", "(None, 6, 28, 28)", 0, 0, 0],
        ["features.pool1 (AvgPool2d)", "(None, 6, 14, 14)", 0, 0, 0],
        ["features.conv2 (Conv2d: direct)", "(None, 16, 10, 10)", 6 * 25 * 16 + 16, conv2_out * 6 * 25, 0],
        ["features.relu2 (ReLU)", "(None, 16, 10, 10)", 0, 0, 0],
        ["features.pool2 (AvgPool2d)", "(None, 16, 5, 5)", 0, 0, 0],
        ["flatten (Flatten)", "(None, 400)", 0, 0, 0],
        ["classifier.fc1 (Linear)", "(None, 120)", 400 * 120 + 120, 400 * 120, 0],
        ["classifier.relu3 (ReLU)", "(None, 120)", 0, 0, 0],
        ["classifier.fc2 (Linear)", "(None, 84)", 120 * 84 + 84, 120 * 84, 0],
        ["classifier.relu4 (ReLU)", "(None, 84)", 0, 0, 0],
        ["classifier.fc3 (Linear)", "(None, 10)", 84 * 10 + 10, 84 * 10, 0],
    ]
    assert lines[0] == "Model: LeNet5, input (None, 1, 32, 32), float32"
    assert lines[2].split() == ["Layer", "(type)", "Output", "shape", "Param", "#", "MACs", "im2col", "bytes",
                                "(batch", "64)"]
    assert rows == [[r[0], r[1]] + [f"{v:,}" for v in r[2:]] for r in expected]
    params = sum(r[2] for r in expected)
    # every output except Flatten's (a view of its input) is a new array
    acts = conv1_out * 2 + 6 * 14 * 14 + conv2_out * 2 + 400 + 120 * 2 + 84 * 2 + 10
    tail = lines[17:]
    assert tail == [
        f"Total params: {params:,}",                   # 61,706
        f"Trainable params: {params:,}",
        "Non-trainable params: 0",
        f"Total MACs per image: {sum(r[3] for r in expected):,}",
        f"Parameter memory: {params * 4:,} bytes ({params * 4 / 2 ** 20:.2f} MB)",
        f"Activation memory (layer outputs, batch 64): {acts * b4:,} bytes ({acts * b4 / 2 ** 20:.2f} MB)",
        f"im2col workspace (shared by all convs, batch 64): {max(r[4] for r in expected):,} bytes "
        f"({max(r[4] for r in expected) / 2 ** 20:.2f} MB)",
    ]
    assert params == 61_706


def test_summary_counts_running_statistics_as_non_trainable():
    model = zoo.get_model("resnet18")
    _, totals = layer_table(model, (3, 32, 32), batch_size=1)
    twin = TWINS["resnet18"]()
    running = sum(b.numel() for k, b in twin.named_buffers() if "running" in k)
    trainable = sum(p.numel() for p in twin.parameters() if p.requires_grad)   # 11,173,962: COUNTS in test_zoo.py
    assert totals["trainable"] == trainable
    assert totals["non_trainable"] == running == 2 * 4800   # 2 x (sum of BatchNorm channels)
    assert totals["total"] == trainable + running
    assert model.training   # the dummy pass in eval mode leaves the model as it found it


def test_summary_im2col_column_is_what_the_convs_allocate(monkeypatch):
    # Run a real training-mode forward and record the column matrix each conv's im2col kernel fills.
    model = zoo.get_model("mobilenet_v1")    # 3x3, 1x1 and depthwise convs, strides 1 and 2
    filled, allocated = [], []
    im2col = cpu_kernels.im2col

    def recording_im2col(*args, **kwargs):
        cols = im2col(*args, **kwargs)
        filled.append(cols.nbytes)
        return cols

    def grab(module, inputs, output):
        if isinstance(module, mt.nn.Conv2d):
            allocated.append(sum(filled))   # 0: only the im2col path builds a column matrix
            filled.clear()

    monkeypatch.setattr(cpu_kernels, "im2col", recording_im2col)
    handles = [m.register_forward_hook(grab) for m in model.modules()]
    model.train()(mt.Tensor(np.random.default_rng(100).standard_normal((2, 3, 32, 32)).astype(np.float32)))
    for h in handles:
        h.remove()
    rows, _ = layer_table(model, (3, 32, 32), batch_size=2)
    assert [r["im2col_bytes"] for r in rows if r["type"] == "Conv2d"] == allocated
    assert 0 in allocated and min(a for a in allocated if a) > 0


def test_summary_lists_layers_that_eval_mode_skips():
    text = zoo.summary(zoo.get_model("googlenet"), (3, 32, 32))
    assert "aux1 (2,174,602 params), aux2 (2,176,650 params)" in text   # heads incl. their BN running stats
    assert "Trainable params: 10,229,806" in text


def test_summary_cli():
    out = subprocess.run([sys.executable, "-m", "zoo.summary", "lenet5", "--in-channels", "1", "--batch-size", "8"],
                         capture_output=True, text=True, check=True)
    assert "Total params: 61,706" in out.stdout and "im2col bytes (batch 8)" in out.stdout
    assert out.stderr == ""


def test_summary_does_not_change_the_model():
    model = zoo.get_model("vgg16")
    before = copy.deepcopy(model.state_dict())
    zoo.summary(model, (3, 32, 32))
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
