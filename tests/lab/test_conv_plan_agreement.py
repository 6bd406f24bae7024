"""One ConvPlan, three readers: zoo.summary's table, the Stepper and conv2d agree on every conv of the zoo.

Before the plan each derived "which algorithm, what scratch" on its own, and they disagreed (summary said
ResNet-18's layer1.0.conv1 builds 150,994,944 bytes of im2col columns at batch 64; the Stepper said None;
the layer runs Winograd and builds neither).
"""
import numpy as np
import pytest

import zoo
from minitorch_cnn import Tensor, manual_seed, nn
from minitorch_cnn.functional.conv import plan_conv
from minitorch_cnn.lab import Stepper, WinogradView
from zoo.summary import layer_table

BATCH = 2


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_summary_stepper_and_conv2d_agree_on_every_conv(name):
    manual_seed(0)
    model = zoo.get_model(name, in_channels=3, num_classes=10).eval()
    rows, _ = layer_table(model, (3, 32, 32), batch_size=BATCH)
    x = np.random.default_rng(0).standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    st = Stepper(model, Tensor(x))
    steps = [s for s in st if s.plan() is not None]
    convs = [r for r in rows if r["type"] == "Conv2d"]
    assert len(steps) == len(convs) == sum(isinstance(s.module, nn.Conv2d) for s in st) > 0
    for row, step in zip(convs, steps):
        plan = step.plan()
        assert row["name"] == step.name
        assert (row["algorithm"], row["forward_bytes"], row["backward_bytes"]) == \
            (plan.algorithm, plan.forward_bytes, plan.backward_bytes), step.name
        assert type(step._tensor.creator).algorithm == plan.algorithm, f"{step.name}: conv2d ran another algorithm"
        assert plan.out_shape == step.output.shape
        view = step.im2col()
        assert view.path == plan.algorithm and view.plan == plan
    winograd = [s for s in steps if s.plan().algorithm == "winograd"]
    if winograd:   # its view rebuilds the layer's output from U, V and the 36 GEMMs
        s = winograd[0]
        view = s.im2col()
        assert isinstance(view, WinogradView) and "36 GEMMs" in str(view)
        bias = 0 if s.module.bias is None else s.module.bias.numpy().reshape(1, -1, 1, 1)
        np.testing.assert_allclose(view.output + bias, s.output, rtol=1e-4, atol=1e-4)


def test_resnet18_layer1_conv1_at_batch_64():
    # the example: the summary's row and the plan of the layer's Stepper step, at batch 64
    model = zoo.get_model("resnet18")
    rows, totals = layer_table(model, (3, 32, 32), batch_size=64)
    row = next(r for r in rows if r["name"] == "layer1.0.conv1")
    plan = plan_conv((64, 64, 32, 32), (64, 64, 3, 3), 1, 1, 1, 1, np.float32, device=model.layer1[0].conv1.weight.data)
    assert row["algorithm"] == plan.algorithm == "winograd" and row["im2col_bytes"] == 0
    assert (row["forward_bytes"], row["backward_bytes"]) == (plan.forward_bytes, plan.backward_bytes)
    assert plan.forward_bytes > 16 * 64 * 64 * 4 and plan.backward_bytes > 0   # U, plus V and M chunks
    assert totals["winograd_bytes"] is not None


def test_the_device_chooses_the_plan_for_the_stepper_and_the_summary(monkeypatch):
    # Winograd is a CPU kernel: on the CUDA kernels (here on their host emulator) the same conv runs im2col
    from minitorch_cnn import using_device
    from minitorch_cnn.kernels import cuda
    calls = []
    im2col = cuda.im2col
    monkeypatch.setattr(cuda, "im2col", lambda *a, **k: calls.append(1) or im2col(*a, **k))
    x = np.random.default_rng(1).standard_normal((1, 16, 8, 8)).astype(np.float32)   # 8x8: Winograd on the CPU
    for where, algorithm in (("cpu", "winograd"), ("cuda-emulator", "im2col")):
        calls.clear()
        conv = nn.Conv2d(16, 8, 3, padding=1)
        step = Stepper(conv, x, device=where)[0]
        assert str(step.device) == where and step.plan().algorithm == algorithm
        assert type(step._tensor.creator).algorithm == algorithm and bool(calls) == (where != "cpu")
        with using_device(where):
            rows, _ = layer_table(nn.Conv2d(16, 8, 3, padding=1), (16, 8, 8), batch_size=1)
        assert rows[0]["algorithm"] == algorithm
        assert rows[0]["forward_bytes"] == step.plan().forward_bytes
