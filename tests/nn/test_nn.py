"""``minitorch_cnn.nn``: Modules against the same ``torch.nn`` Modules.

Structure (names and order of parameters, buffers, children and state-dict keys),
state-dict round trips and their errors, modes, dtype conversion, hooks, default
initialisation, and for every layer: forward output and every input/parameter
gradient equal to torch's with the same weights (relative error max|a-b| / max|b|
<= 1e-10 in float64, <= 1e-5 in float32), plus a float64 finite-difference
gradcheck (worst relative error <= 1e-6).
"""
import math
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from support import numerics as helpers
from support.numerics import distinct, rel_err

import minitorch_cnn as mt
from minitorch_cnn import Tensor, nn
from minitorch_cnn import functional as F
from minitorch_cnn.nn import init

TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
GRADCHECK_TOL = 1e-6
VANISHING = {np.float64: 1e-12, np.float32: 1e-5}


def note(name, measure, value):
    family = re.sub(r"pool\d+$", "pool", name.split("-")[0])  # maxpool2, maxpool3 -> maxpool
    helpers.record("nn", family, measure, value)


def torch_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


# ---- one nested model, written once for both frameworks -----------------------------------

def make_model(tnn, cat, p=0.3):
    """A Sequential with BatchNorm, a custom Module with submodules, a ModuleList and a nested Sequential."""

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn = tnn.BatchNorm2d(4)
            self.act = tnn.ReLU6()
            self.branches = tnn.ModuleList([
                tnn.Conv2d(4, 2, 1),
                tnn.Sequential(tnn.Conv2d(4, 4, 3, padding=1, groups=4), tnn.Conv2d(4, 3, (1, 3), padding=(0, 1)),
                               tnn.Tanh()),
            ])

        def forward(self, x):
            h = self.act(self.bn(self.conv(x))) + x
            return cat([branch(h) for branch in self.branches], dim=1)

    return tnn.Sequential(
        tnn.Conv2d(3, 4, 3, stride=2, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), Block(),
        tnn.MaxPool2d(2), tnn.AvgPool2d(2, 1), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Dropout(p),
        tnn.Linear(5, 6), tnn.BatchNorm1d(6), tnn.Sigmoid(), tnn.Identity(), tnn.Linear(6, 3, bias=False))


def model_pair(dtype=np.float64, p=0.3, seed=0):
    """Our model and torch's with identical (torch-initialised, then randomised) weights and buffers."""
    torch.manual_seed(seed)
    theirs = make_model(torch.nn, torch.cat, p).to(TORCH_DTYPE[dtype])
    randomize(theirs, seed)
    ours = make_model(nn, F.cat, p).to(dtype)
    ours.load_state_dict(torch_state(theirs))
    return ours, theirs


def randomize(tmodule, seed):
    """Non-trivial values everywhere: BatchNorm's default weight 1, bias 0, mean 0, var 1 would hide bugs."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, v in tmodule.state_dict().items():
            if not v.is_floating_point():
                continue
            if name.endswith("running_var"):
                new = rng.uniform(0.5, 2.0, tuple(v.shape))
            else:
                new = rng.standard_normal(tuple(v.shape)) * 0.5
            v.copy_(torch.from_numpy(new))


# ---- structure ---------------------------------------------------------------------------

def test_names_and_order_match_torch():
    ours, theirs = model_pair()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours[3].named_children()] == [n for n, _ in theirs[3].named_children()]
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [n for n, _ in ours[3].named_parameters(recurse=False)] == []
    assert [n for n, _ in ours[1].named_parameters(recurse=False)] == ["weight", "bias"]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    for p in ours.parameters():
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf


def test_state_dict_keys_shapes_and_dtypes_match_torch():
    ours, theirs = model_pair()
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref)
    assert "1.num_batches_tracked" in mine and "3.bn.running_var" in mine and "3.branches.1.1.weight" in mine
    for k in ref:
        assert tuple(mine[k].shape) == tuple(ref[k].shape), k
        assert np.array_equal(mine[k], ref[k].numpy()), k
    assert mine["1.num_batches_tracked"].dtype == np.int64


def test_reassigning_a_submodule_or_parameter_keeps_its_place_like_torch():
    ours, theirs = model_pair()
    for tnn, model in ((nn, ours), (torch.nn, theirs)):
        model[3].conv = tnn.Conv2d(4, 4, 3, padding=1)        # replace a layer (fine-tuning style)
        model[3].bn.weight = tnn.Parameter(model[3].bn.weight.detach() * 2 if tnn is torch.nn
                                           else Tensor(model[3].bn.weight.data * 2))
        model[3].extra = tnn.Identity()                       # a new one goes last
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_sequential_and_module_list_behave_like_torch():
    ours, theirs = model_pair()
    assert len(ours) == len(theirs) == 14
    assert isinstance(ours[0], nn.Conv2d) and isinstance(ours[-1], nn.Linear)
    # a slice keeps the original names, as torch's does
    assert list(ours[1:4].state_dict()) == list(theirs[1:4].state_dict())
    assert len(ours[3].branches) == 2 and isinstance(ours[3].branches[1], nn.Sequential)
    assert [type(m).__name__ for m in ours[3].branches] == ["Conv2d", "Sequential"]
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    tnamed = torch.nn.Sequential(OrderedDict([("conv", torch.nn.Conv2d(1, 2, 3)), ("act", torch.nn.ReLU())]))
    assert list(named.state_dict()) == list(tnamed.state_dict()) == ["conv.weight", "conv.bias"]
    named.append(nn.Linear(2, 2))
    tnamed.append(torch.nn.Linear(2, 2))
    assert list(named.state_dict()) == list(tnamed.state_dict())


def test_plain_attributes_and_lists_are_not_registered():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(2, 2)]          # a plain list hides its layers (as in torch)
            self.scale = 3.0
            self.register_buffer("steps", np.zeros((), np.int64))
            self.register_parameter("gain", None)
    m = M()
    assert list(m.named_parameters()) == [] and m.gain is None and m.scale == 3.0
    assert [n for n, _ in m.named_buffers()] == ["steps"]


def test_module_requires_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="super"):
        Broken()


# ---- state dict round trip and errors -----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_loaded_from_torch_gives_torch_outputs_and_gradients(dtype, mode):
    """The whole nested model: forward, input gradient, every parameter gradient and the running stats.

    In float32 the reference is torch's model in float64 (same float32-rounded weights): through 14
    layers torch's own float32 result is ~5e-6 off in places, and ours must not be further than 1e-5
    from the exact answer.
    """
    ours, theirs = model_pair(dtype, p=0.3 if mode == "eval" else 0.0)
    theirs = theirs.double()
    getattr(ours, mode)()
    getattr(theirs, mode)()
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((4, 3, 12, 12)).astype(dtype)
    errors = module_errors(ours, theirs, [x_np], dtype, ref_dtype=np.float64)
    note("nested-model", f"torch parity {np.dtype(dtype).name}", max(errors.values()))
    assert max(errors.values()) <= TOL[dtype], errors
    for k, v in theirs.state_dict().items():  # running statistics updated (train) or untouched (eval) alike
        assert rel_err(ours.state_dict()[k], v.numpy()) <= TOL[dtype], k


def test_load_state_dict_copies_into_the_existing_arrays():
    ours, theirs = model_pair()
    weight = ours[0].weight
    before = weight.data
    ours.load_state_dict({k: v * 0 if v.dtype.kind == "f" else v for k, v in torch_state(theirs).items()})
    assert ours[0].weight is weight and weight.data is before and not before.any()


def test_load_state_dict_reports_every_problem_in_one_error():
    ours, theirs = model_pair()
    state = torch_state(theirs)
    del state["3.bn.running_mean"]
    del state["9.bias"]
    state["3.bn.extra"] = np.zeros(4)
    state["unknown.weight"] = np.zeros(1)
    state["0.weight"] = np.zeros((4, 3, 5, 5))
    state["3.branches.0.bias"] = np.zeros(3)
    snapshot = {k: v.copy() for k, v in ours.state_dict().items()}
    with pytest.raises(ValueError) as info:
        ours.load_state_dict(state)
    message = str(info.value)
    for key in ("3.bn.running_mean", "9.bias", "3.bn.extra", "unknown.weight", "0.weight", "3.branches.0.bias"):
        assert key in message, f"{key} not named in: {message}"
    assert "(4, 3, 5, 5)" in message and "(4, 3, 3, 3)" in message
    for k, v in ours.state_dict().items():  # nothing was half-loaded
        assert np.array_equal(v, snapshot[k]), k


def test_load_state_dict_non_strict_ignores_missing_and_unexpected_keys():
    ours, theirs = model_pair()
    state = torch_state(theirs)
    del state["9.weight"]
    state["unexpected"] = np.zeros(2)
    state["9.bias"] = state["9.bias"] + 1
    ours[9].weight.data[...] = 7.0
    ours.load_state_dict(state, strict=False)
    assert (ours[9].weight.data == 7.0).all()
    assert np.array_equal(ours[9].bias.data, state["9.bias"])
    state["0.weight"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="0.weight"):
        ours.load_state_dict(state, strict=False)


# ---- modes, gradients, dtypes ------------------------------------------------------------

def test_train_and_eval_propagate_to_every_submodule():
    ours, _ = model_pair()
    assert ours.eval() is ours
    assert all(not m.training for m in ours.modules())
    ours[3].train()
    assert ours[3].branches[1][2].training and not ours.training and not ours[9].training
    ours.train()
    assert all(m.training for m in ours.modules())
    ours.train(False)
    assert all(not m.training for m in ours.modules())


def test_zero_grad():
    ours, _ = model_pair()
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 12, 12)))
    ours(x).sum().backward()
    assert all(p.grad is not None for p in ours.parameters())
    ours.zero_grad(set_to_none=False)
    for p in ours.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any()
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_requires_grad_false_freezes_parameters():
    layer = nn.Linear(3, 2).double()
    layer.requires_grad_(False)
    x = Tensor(np.ones((1, 3)), requires_grad=True)
    layer(x).sum().backward()
    assert layer.weight.grad is None and x.grad is not None


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.to(np.float64), lambda m: m.to("float64"),
                                     lambda m: m.to(np.dtype(np.float64))], ids=["double", "to-type", "to-str",
                                                                                   "to-dtype"])
def test_dtype_conversion_changes_floats_but_not_int_buffers(convert):
    model, _ = model_pair(np.float32)
    x = Tensor(np.ones((2, 3, 12, 12), np.float32))
    model(x).sum().backward()
    assert convert(model) is model
    for name, p in model.named_parameters():
        assert p.dtype == np.float64 and p.grad.dtype == np.float64, name
    for name, b in model.named_buffers():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert b.dtype == expected, name
    assert model(Tensor(np.ones((2, 3, 12, 12)))).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert {b.dtype for b in model.buffers()} == {np.dtype(np.float32), np.dtype(np.int64)}


# ---- hooks -------------------------------------------------------------------------------

def _record(model, log):
    handles = []
    for name, m in model.named_modules():
        def pre(mod, inputs, name=name):
            log.append(("pre", name, [tuple(i.shape) for i in inputs]))

        def post(mod, inputs, output, name=name):
            out = output.detach().numpy() if isinstance(output, torch.Tensor) else output.numpy().copy()
            log.append(("post", name, [tuple(i.shape) for i in inputs], out))
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    return handles


def test_hooks_see_every_submodule_in_execution_order_like_torch():
    ours, theirs = model_pair()
    ours.eval()
    theirs.eval()
    x_np = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    log, tlog = [], []
    handles, thandles = _record(ours, log), _record(theirs, tlog)
    out = ours(Tensor(x_np))
    with torch.no_grad():
        theirs(torch.tensor(x_np))
    assert [e[:3] for e in log] == [e[:3] for e in tlog]
    # every module but the ModuleList (iterated, never called) runs once
    assert len(log) == 2 * (len(list(ours.modules())) - 1)
    assert log[0][:2] == ("pre", "") and log[-1][:2] == ("post", "")
    for mine, ref in zip(log, tlog):
        if mine[0] == "post":
            assert rel_err(mine[3], ref[3]) <= 1e-10, mine[1]
    np.testing.assert_array_equal(log[-1][3], out.numpy())
    for h in handles:
        h.remove()
    for h in thandles:
        h.remove()
    count = len(log)
    ours(Tensor(x_np))
    assert len(log) == count


def test_hooks_can_replace_inputs_and_outputs_like_torch():
    ours, theirs = model_pair()
    ours.eval()
    theirs.eval()
    x_np = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    baseline = ours(Tensor(x_np)).numpy().copy()
    results = []
    for model, wrap in ((ours, Tensor), (theirs, torch.tensor)):
        h1 = model[2].register_forward_hook(lambda m, i, o: o * 0.5)            # scale ReLU's output
        h2 = model[3].register_forward_pre_hook(lambda m, i: (i[0] + 1.0,))    # shift Block's input (a tuple)
        h3 = model[9].register_forward_pre_hook(lambda m, i: i[0] * 2.0)       # a bare tensor also works
        out = model(wrap(x_np))
        results.append(out.detach().numpy() if isinstance(out, torch.Tensor) else out.numpy())
        h1.remove()
        h2.remove()
        h3.remove()
        h3.remove()  # removing twice is harmless
    assert rel_err(results[0], results[1]) <= 1e-10
    assert not np.allclose(results[0], baseline)
    np.testing.assert_array_equal(ours(Tensor(x_np)).numpy(), baseline)


def test_hooks_run_in_registration_order():
    layer = nn.Identity()
    calls = []
    layer.register_forward_hook(lambda m, i, o: calls.append(1))
    h = layer.register_forward_hook(lambda m, i, o: calls.append(2))
    layer.register_forward_hook(lambda m, i, o: calls.append(3))
    layer(Tensor(np.ones(1)))
    h.remove()
    layer(Tensor(np.ones(1)))
    assert calls == [1, 2, 3, 1, 3]


# ---- default initialisation ----------------------------------------------------------------

@pytest.mark.parametrize("make, fan_in", [
    (lambda tnn: tnn.Conv2d(64, 128, 3), 64 * 9),
    (lambda tnn: tnn.Conv2d(32, 64, (1, 7), groups=4), 8 * 7),
    (lambda tnn: tnn.Linear(1000, 300), 1000),
], ids=["conv", "conv-grouped-rect", "linear"])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    mt.manual_seed(0)
    ours, theirs = make(nn), make(torch.nn)
    bound = 1 / math.sqrt(fan_in)
    w, b = ours.weight.numpy(), ours.bias.numpy()
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(b).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound and np.abs(b).max() > 0.7 * bound
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.03       # U(-b, b) has variance b^2 / 3
    assert abs(w.mean()) < 0.02 * bound
    tw = theirs.weight.detach().numpy()
    assert np.abs(tw).max() <= bound * (1 + 1e-6) and abs(w.var() / tw.var() - 1) < 0.05


def test_default_init_is_seeded():
    mt.manual_seed(3)
    a = nn.Conv2d(3, 4, 3)
    mt.manual_seed(3)
    b = nn.Conv2d(3, 4, 3)
    c = nn.Conv2d(3, 4, 3)
    assert np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(b.weight.data, c.weight.data)


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm2d, (16,)), (nn.BatchNorm1d, (16,))])
def test_batchnorm_default_state(cls, shape):
    bn, ref = cls(16), getattr(torch.nn, cls.__name__)(16)
    for k, v in ref.state_dict().items():
        mine = bn.state_dict()[k]
        assert mine.dtype == (np.int64 if k == "num_batches_tracked" else np.float32), k
        assert np.array_equal(mine, v.numpy()), k
    assert bn.momentum == 0.1 and bn.eps == 1e-5 and bn.affine and bn.track_running_stats


@pytest.mark.parametrize("mode, fan", [("fan_out", 256 * 9), ("fan_in", 128 * 9)])
def test_kaiming_normal_std(mode, fan):
    mt.manual_seed(0)
    p = nn.Parameter(np.zeros((256, 128, 3, 3), np.float32))
    assert init.kaiming_normal_(p, mode=mode, nonlinearity="relu") is p
    std = math.sqrt(2.0 / fan)
    assert p.dtype == np.float32
    assert abs(p.data.std() / std - 1) < 0.02 and abs(p.data.mean()) < 0.01 * std


def test_init_helpers():
    p = nn.Parameter(np.zeros((50, 40)))
    init.constant_(p, 0.25)
    assert (p.data == 0.25).all()
    init.ones_(p)
    assert (p.data == 1).all()
    init.zeros_(p)
    assert not p.data.any()
    bound = math.sqrt(6 / 90)
    init.xavier_uniform_(p)
    assert np.abs(p.data).max() <= bound and abs(p.data.var() / (bound ** 2 / 3) - 1) < 0.1
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(p, mode="fan_avg")


# ---- every layer against the torch layer ---------------------------------------------------

def _spec(name, make, shape, mode="train", scale=1.0):
    return pytest.param(name, make, shape, mode, scale, id=name)


MODULES = [
    _spec("conv", lambda m: m.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    _spec("conv-stride2-pad1", lambda m: m.Conv2d(3, 5, 3, stride=2, padding=1), (2, 3, 9, 8)),
    _spec("conv-pairs", lambda m: m.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 2)), (2, 2, 7, 5)),
    _spec("conv-1x3", lambda m: m.Conv2d(3, 4, (1, 3), padding=(0, 1)), (2, 3, 5, 6)),
    _spec("conv-3x1", lambda m: m.Conv2d(3, 4, (3, 1), stride=(1, 2)), (2, 3, 5, 6)),
    _spec("conv-5x5", lambda m: m.Conv2d(2, 3, 5, padding=2), (2, 2, 7, 8)),
    _spec("conv-7x7-s2", lambda m: m.Conv2d(2, 3, 7, stride=2, padding=3), (1, 2, 11, 10)),
    _spec("conv-1x1", lambda m: m.Conv2d(4, 6, 1), (2, 4, 5, 5)),
    _spec("conv-groups2", lambda m: m.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 6, 6)),
    _spec("conv-depthwise", lambda m: m.Conv2d(4, 4, 3, padding=1, groups=4), (2, 4, 6, 7)),
    _spec("conv-depthwise-x2-s2", lambda m: m.Conv2d(3, 6, 3, stride=2, padding=1, groups=3), (2, 3, 8, 7)),
    _spec("conv-depthwise-nobias", lambda m: m.Conv2d(3, 3, (3, 1), padding=(1, 0), groups=3, bias=False),
          (2, 3, 5, 5)),
    _spec("conv-nobias", lambda m: m.Conv2d(3, 4, 3, bias=False), (2, 3, 6, 6)),
    _spec("conv-dilation", lambda m: m.Conv2d(2, 3, 3, padding=2, dilation=2), (1, 2, 8, 9)),
    _spec("linear", lambda m: m.Linear(5, 3), (4, 5)),
    _spec("linear-3d", lambda m: m.Linear(5, 3), (2, 3, 5)),
    _spec("linear-1d", lambda m: m.Linear(5, 3), (5,)),
    _spec("linear-nobias", lambda m: m.Linear(5, 3, bias=False), (4, 5)),
    _spec("bn1d-2d-train", lambda m: m.BatchNorm1d(3), (5, 3)),
    _spec("bn1d-2d-eval", lambda m: m.BatchNorm1d(3), (5, 3), "eval"),
    _spec("bn1d-3d-train", lambda m: m.BatchNorm1d(3), (4, 3, 5)),
    _spec("bn1d-3d-eval", lambda m: m.BatchNorm1d(3), (4, 3, 5), "eval"),
    _spec("bn2d-train", lambda m: m.BatchNorm2d(3), (2, 3, 4, 5)),
    _spec("bn2d-eval", lambda m: m.BatchNorm2d(3), (2, 3, 4, 5), "eval"),
    _spec("bn2d-momentum-none", lambda m: m.BatchNorm2d(3, momentum=None), (2, 3, 4, 5)),
    _spec("bn2d-eps-momentum", lambda m: m.BatchNorm2d(3, eps=1e-3, momentum=0.3), (2, 3, 4, 5)),
    _spec("bn2d-no-affine", lambda m: m.BatchNorm2d(3, affine=False), (2, 3, 4, 5)),
    _spec("bn2d-no-bias", lambda m: m.BatchNorm2d(3, bias=False), (2, 3, 4, 5)),
    _spec("bn2d-untracked-train", lambda m: m.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 5)),
    _spec("bn2d-untracked-eval", lambda m: m.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 5), "eval"),
    _spec("maxpool2", lambda m: m.MaxPool2d(2), (2, 3, 6, 7)),
    _spec("maxpool3-s2-p1", lambda m: m.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
    _spec("maxpool-rect", lambda m: m.MaxPool2d((2, 3), (1, 2)), (2, 2, 5, 7)),
    _spec("avgpool2", lambda m: m.AvgPool2d(2), (2, 3, 6, 7)),
    _spec("avgpool3-s2-p1", lambda m: m.AvgPool2d(3, 2, 1), (2, 3, 7, 6)),
    _spec("avgpool-exclude-pad", lambda m: m.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 6)),
    _spec("adaptive-global", lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 5, 6)),
    _spec("adaptive-3x2", lambda m: m.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    _spec("adaptive-upsample", lambda m: m.AdaptiveAvgPool2d((5, 4)), (2, 2, 7, 3)),
    _spec("relu", lambda m: m.ReLU(), (2, 3, 4, 4)),
    _spec("relu6", lambda m: m.ReLU6(), (2, 3, 4, 4), scale=16.0),
    _spec("sigmoid", lambda m: m.Sigmoid(), (2, 3, 4, 4), scale=12.0),
    _spec("tanh", lambda m: m.Tanh(), (2, 3, 4, 4), scale=6.0),
    _spec("flatten", lambda m: m.Flatten(), (2, 3, 4, 4)),
    _spec("flatten-0-2", lambda m: m.Flatten(0, 2), (2, 3, 4, 4)),
    _spec("identity", lambda m: m.Identity(), (2, 3)),
    _spec("dropout-eval", lambda m: m.Dropout(0.4), (3, 4), "eval"),
    _spec("dropout-p0-train", lambda m: m.Dropout(0.0), (3, 4)),
]
PARAMETRISED = {"conv", "linear", "bn1", "bn2"}


def module_pair(make, dtype, mode, seed=0):
    torch.manual_seed(seed)
    theirs = make(torch.nn).to(TORCH_DTYPE[dtype])
    randomize(theirs, seed)
    ours = make(nn).to(dtype)
    ours.load_state_dict(torch_state(theirs))
    getattr(ours, mode)()
    getattr(theirs, mode)()
    return ours, theirs


def module_errors(ours, theirs, arrays, dtype, extra=(), ref_dtype=None):
    """Forward and backward both with the same upstream gradient: relative error of everything, by name.

    ``ref_dtype`` runs torch's side in another dtype (float64 as the exact reference for a float32 run).
    """
    ref_dtype = ref_dtype or dtype
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.astype(ref_dtype), requires_grad=True) for a in arrays]
    out, tout = ours(*xs, *extra), theirs(*ts, *[torch.from_numpy(e) for e in extra])
    upstream = np.random.default_rng(7).standard_normal(tuple(tout.shape)).astype(dtype)
    out.backward(upstream)
    tout.backward(torch.tensor(upstream.astype(ref_dtype)))
    assert out.dtype == dtype
    errors = {"output": rel_err(out.numpy(), tout.detach().numpy())}
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert x.grad.dtype == dtype
        errors[f"input{i}.grad"] = rel_err(x.grad, t.grad.numpy())
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    # A gradient that vanishes in exact arithmetic (a conv bias right before a training-mode
    # BatchNorm) is rounding noise in both frameworks: it is measured against the scale of its
    # layer's weight gradient instead of against its own.
    scales = {}
    for name, p in theirs_params.items():
        prefix = name.rpartition(".")[0]
        scales[prefix] = max(scales.get(prefix, 0.0), float(p.grad.abs().max()))
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.dtype == dtype, name
        ref = theirs_params[name].grad.numpy()
        floor = VANISHING[dtype] * scales[name.rpartition(".")[0]]
        if np.abs(ref).max() <= floor:
            errors[f"{name}.grad (vanishing)"] = float(np.abs(p.grad - ref).max() / scales[name.rpartition(".")[0]])
        else:
            errors[f"{name}.grad"] = rel_err(p.grad, ref)
    for name, b in theirs.named_buffers():
        errors[f"{name} (buffer)"] = rel_err(ours.state_dict()[name], b.numpy())
    return errors


def _module_input(shape, dtype, scale, seed=0):
    return (distinct(np.random.default_rng(seed), shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, make, shape, mode, scale", MODULES)
def test_module_matches_torch(name, make, shape, mode, scale, dtype):
    ours, theirs = module_pair(make, dtype, mode)
    errors = module_errors(ours, theirs, [_module_input(shape, dtype, scale)], dtype)
    note(name, f"torch parity {np.dtype(dtype).name}", max(errors.values()))
    assert max(errors.values()) <= TOL[dtype], errors


@pytest.mark.parametrize("name, make, shape, mode, scale", [m for m in MODULES if "dropout" not in m.id])
def test_module_gradcheck(name, make, shape, mode, scale):
    ours, _ = module_pair(make, np.float64, mode)
    if len(shape) == 4:  # one image is enough for finite differences (it costs 4 forwards per element)
        shape = (1,) + shape[1:]
    x = Tensor(_module_input(shape, np.float64, scale), requires_grad=True)
    params = list(ours.parameters())
    report = mt.gradcheck(ours, [x], params=params)
    note(name, "gradcheck float64", report.max_error)
    assert len(report.errors) == 1 + len(params)
    assert report.ok(GRADCHECK_TOL), str(report)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"label_smoothing": 1.0},
                                    {"reduction": "sum", "label_smoothing": 0.2}, {"reduction": "none"}],
                         ids=["plain", "smooth0.1", "smooth1", "sum-smooth", "none"])
def test_cross_entropy_loss_matches_torch(kwargs, dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((6, 5)) * 3).astype(dtype)
    target = rng.integers(0, 5, 6)
    ours, theirs = nn.CrossEntropyLoss(**kwargs), torch.nn.CrossEntropyLoss(**kwargs)
    errors = module_errors(ours, theirs, [logits], dtype, extra=(target,))
    note("crossentropy", f"torch parity {np.dtype(dtype).name}", max(errors.values()))
    assert max(errors.values()) <= TOL[dtype], errors
    report = mt.gradcheck(lambda z: ours(z, target), [Tensor(logits.astype(np.float64), requires_grad=True)])
    note("crossentropy", "gradcheck float64", report.max_error)
    assert report.ok(GRADCHECK_TOL), str(report)


# ---- BatchNorm running statistics over several steps --------------------------------------

@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("cls, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                        ("BatchNorm1d", (4, 3, 7))], ids=["2d", "1d-NC", "1d-NCL"])
def test_batchnorm_running_stats_match_torch_after_five_steps(cls, shape, momentum):
    ours, theirs = getattr(nn, cls)(3, momentum=momentum).double(), getattr(torch.nn, cls)(3, momentum=momentum)
    theirs.double()
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal(shape) * 2 + 1
        out, tout = ours(Tensor(x)), theirs(torch.tensor(x))
        assert rel_err(out.numpy(), tout.detach().numpy()) <= 1e-10
    for k, v in theirs.state_dict().items():
        assert rel_err(ours.state_dict()[k], v.numpy()) <= 1e-10, k
    assert int(ours.num_batches_tracked) == 5
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape)
    assert rel_err(ours(Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy()) <= 1e-10
    ours(Tensor(x))
    assert int(ours.num_batches_tracked) == 5  # eval does not count


def test_batchnorm_float32_running_stats_stay_float32():
    bn = nn.BatchNorm2d(3)
    bn(Tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)))
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32


# ---- Dropout -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_train_zeroes_p_and_scales_the_rest(p, dtype):
    mt.manual_seed(0)
    layer = nn.Dropout(p)
    x = Tensor(np.ones((400, 250), dtype), requires_grad=True)
    out = layer(x)
    y = out.numpy()
    assert out.dtype == dtype
    kept = y != 0
    assert abs((~kept).mean() - p) < 0.01
    np.testing.assert_array_equal(y[kept], dtype(1.0 / (1.0 - p)))
    upstream = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    out.backward(upstream)
    np.testing.assert_array_equal(x.grad, upstream * y)   # the same mask, the same scale
    assert x.grad.dtype == dtype


def test_dropout_eval_is_identity_and_masks_are_seeded():
    layer = nn.Dropout(0.5).eval()
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    out = layer(x)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    out.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))
    layer.train()
    mt.manual_seed(5)
    a = layer(x).numpy()
    mt.manual_seed(5)
    b = layer(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, layer(x).numpy())
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)


def test_dropout_gradcheck_with_a_fixed_mask():
    layer = nn.Dropout(0.3)

    def fn(x):
        mt.manual_seed(11)  # the same mask on every call, so finite differences see one function
        return layer(x)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    report = mt.gradcheck(fn, [x])
    assert report.ok(GRADCHECK_TOL), str(report)


# ---- bad input ------------------------------------------------------------------------------

def _raises(layer, shape, *fragments, error=ValueError):
    helpers.raises_naming(error, lambda: layer(Tensor(np.zeros(shape, np.float32))), *fragments)


def test_conv2d_wrong_channels_names_layer_and_shape():
    _raises(nn.Conv2d(3, 64, 3), (8, 1, 32, 32), "Conv2d(3, 64", "(8, 1, 32, 32)")


@pytest.mark.parametrize("layer, shape, fragments", [
    (lambda: nn.Conv2d(3, 4, 3), (3, 32, 32), ["Conv2d(3, 4", "(3, 32, 32)"]),
    (lambda: nn.Conv2d(3, 4, 3), (1, 1, 3, 32, 32), ["Conv2d(3, 4", "(1, 1, 3, 32, 32)"]),
    (lambda: nn.BatchNorm2d(3), (8, 3), ["BatchNorm2d(3", "(8, 3)"]),
    (lambda: nn.BatchNorm2d(3), (2, 3, 4), ["BatchNorm2d(3", "(2, 3, 4)"]),
    (lambda: nn.MaxPool2d(2), (3, 8, 8), ["MaxPool2d", "(3, 8, 8)"]),
    (lambda: nn.AvgPool2d(2), (3, 8, 8), ["AvgPool2d", "(3, 8, 8)"]),
    (lambda: nn.AdaptiveAvgPool2d(1), (8, 8), ["adaptive_avg_pool2d", "(8, 8)"]),
], ids=["conv-3d", "conv-5d", "bn2d-2d", "bn2d-3d", "maxpool-3d", "avgpool-3d", "adaptive-2d"])
def test_non_4d_input_to_2d_layers(layer, shape, fragments):
    _raises(layer(), shape, *fragments)


@pytest.mark.parametrize("layer, shape, fragments", [
    (lambda: nn.Conv2d(1, 2, 5), (1, 1, 3, 8), ["Conv2d(1, 2", "larger", "(1, 1, 3, 8)"]),
    (lambda: nn.Conv2d(1, 2, 5, padding=1), (1, 1, 2, 8), ["Conv2d(1, 2", "larger", "(1, 1, 2, 8)"]),
    (lambda: nn.Conv2d(1, 2, (1, 4), dilation=2), (1, 1, 8, 6), ["larger", "(1, 1, 8, 6)"]),
    (lambda: nn.MaxPool2d(4), (1, 1, 3, 3), ["MaxPool2d", "larger", "(1, 1, 3, 3)"]),
    (lambda: nn.AvgPool2d(4, padding=1), (1, 1, 8, 1), ["AvgPool2d", "larger", "(1, 1, 8, 1)"]),
], ids=["conv", "conv-padded", "conv-dilated", "maxpool", "avgpool"])
def test_kernel_larger_than_padded_input(layer, shape, fragments):
    _raises(layer(), shape, *fragments)


@pytest.mark.parametrize("layer, shape, fragments", [
    (lambda: nn.Linear(5, 3), (2, 4), ["Linear(in_features=5", "(2, 4)"]),
    (lambda: nn.Linear(5, 3), (5, 2), ["Linear(in_features=5", "(5, 2)"]),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5), ["BatchNorm2d(3", "(2, 4, 5, 5)"]),
    (lambda: nn.BatchNorm1d(3), (2, 4), ["BatchNorm1d(3", "(2, 4)"]),
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 4), ["BatchNorm1d(3", "(2, 3, 4, 4)"]),
], ids=["linear", "linear-transposed", "bn2d-channels", "bn1d-channels", "bn1d-4d"])
def test_wrong_feature_counts(layer, shape, fragments):
    _raises(layer(), shape, *fragments)


def test_batchnorm_training_needs_more_than_one_value_per_channel():
    _raises(nn.BatchNorm1d(3), (1, 3), "more than 1 value")


def test_cross_entropy_loss_rejects_bad_targets():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        loss(Tensor(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        loss(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))


@pytest.mark.parametrize("make, error, fragments", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, ["Conv2d", "groups=2", "in_channels=3", "out_channels=4"]),
    (lambda: nn.Conv2d(3, 4, 3, padding="same"), TypeError, ["Conv2d", "padding", "pair of ints", "'same'"]),
    (lambda: nn.Conv2d(3, 4, "same"), TypeError, ["Conv2d", "kernel_size", "pair of ints", "'same'"]),
    (lambda: nn.Dropout(-0.1), ValueError, ["Dropout", "[0, 1]", "-0.1"]),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), ValueError, ["Conv2d", "'zeros'", "'reflect'"]),
    (lambda: nn.MaxPool2d(2, ceil_mode=True), ValueError, ["MaxPool2d", "ceil_mode=True"]),
], ids=["groups", "padding-str", "kernel-str", "dropout-p", "padding-mode", "ceil-mode"])
def test_bad_constructor_arguments(make, error, fragments):
    helpers.raises_naming(error, make, *fragments)


def test_container_slices():
    layers = [nn.ReLU(), nn.Linear(2, 3), nn.Linear(3, 1)]
    sliced = nn.ModuleList(layers)[1:]
    assert isinstance(sliced, nn.ModuleList) and list(sliced) == layers[1:]
    assert list(sliced.state_dict()) == list(torch.nn.ModuleList([torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)])
                                              [0:].state_dict())     # renumbered from 0, like torch's
    assert list(nn.Sequential(*layers)[1:].state_dict())[0] == "1.weight"   # a Sequential slice keeps the names


# ---- repr -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda m: m.Conv2d(3, 64, 3),
    lambda m: m.Conv2d(3, 64, (1, 3), stride=2, padding=(0, 1)),
    lambda m: m.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
    lambda m: m.Conv2d(8, 16, 5, stride=(2, 1), padding=2, dilation=2),
    lambda m: m.Linear(512, 10),
    lambda m: m.Linear(4, 2, bias=False),
    lambda m: m.BatchNorm2d(64),
    lambda m: m.BatchNorm2d(8, eps=1e-3, momentum=None, affine=False, track_running_stats=False),
    lambda m: m.BatchNorm1d(10, momentum=0.01),
    lambda m: m.AvgPool2d(3, 2, 1),
    lambda m: m.AdaptiveAvgPool2d((2, 3)),
    lambda m: m.Flatten(),
    lambda m: m.ReLU(),
    lambda m: m.Identity(),
    lambda m: m.Sequential(m.Conv2d(1, 2, 3), m.BatchNorm2d(2), m.ReLU(),
                           m.Sequential(m.Flatten(), m.Linear(2, 1))),
], ids=["conv", "conv-rect", "conv-depthwise", "conv-dilation", "linear", "linear-nobias", "bn2d",
        "bn2d-options", "bn1d", "avgpool", "adaptive", "flatten", "relu", "identity", "sequential"])
def test_repr_matches_torch(make):
    assert repr(make(nn)) == repr(make(torch.nn))
