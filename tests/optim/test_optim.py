"""Optimizers and lr schedulers, checked against torch.optim on the same problem."""
import types

import numpy as np
import pytest
import torch

from minitorch_cnn import optim
from minitorch_cnn.optim import lr_scheduler

SHAPES = [(3,), (2, 4), (5, 1)]
STEPS = 20
TOL = 1e-10

# (our class, torch class, keyword arguments) -- each row is one configuration.
CASES = [
    (optim.SGD, torch.optim.SGD, {"lr": 0.05}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1, "nesterov": True}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.5, "weight_decay": 0.2}),
    (optim.Adam, torch.optim.Adam, {"lr": 0.05}),
    (optim.Adam, torch.optim.Adam, {"lr": 0.05, "amsgrad": True}),
    (optim.Adam, torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    (optim.Adam, torch.optim.Adam, {"lr": 0.05, "betas": (0.3, 0.9), "weight_decay": 0.1, "amsgrad": True}),
    (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.05}),
    (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.2, "eps": 1e-6}),
    (optim.Adadelta, torch.optim.Adadelta, {}),
    (optim.Adadelta, torch.optim.Adadelta, {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    (optim.Adadelta, torch.optim.Adadelta, {"lr": 2.0, "eps": 1e-4}),
    (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.9}),
    (optim.RMSprop, torch.optim.RMSprop,
     {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
]
CASE_IDS = [f"{ours.__name__}-{kw}" for ours, _, kw in CASES]
OURS = [optim.SGD, optim.Adam, optim.Adagrad, optim.Adadelta, optim.RMSprop]


# ---- the test problem: a quadratic per parameter, gradient 2·A·p + b -------------

def _problem(seed=0):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s) for s in SHAPES]
    mats = []
    for s in SHAPES:
        n = int(np.prod(s))
        m = rng.standard_normal((n, n))
        mats.append((m @ m.T / n + np.eye(n), rng.standard_normal(n)))
    return values, mats


def _grad(value, mat):
    a, b = mat
    return (2 * a @ value.ravel() + b).reshape(value.shape)


def _ours(values, dtype=np.float64):
    return [types.SimpleNamespace(data=v.astype(dtype), grad=None) for v in values]


def _run_ours(opt, params, mats, steps):
    for _ in range(steps):
        for p, m in zip(params, mats):
            p.grad = _grad(p.data, m).astype(p.data.dtype)
        opt.step()


def _run_torch(opt, params, mats, steps):
    for _ in range(steps):
        for p, m in zip(params, mats):
            p.grad = torch.from_numpy(_grad(p.detach().numpy().copy(), m))
        opt.step()


def _max_diff(ours, theirs):
    """Largest difference, absolute or relative to the value, whichever is smaller."""
    worst = 0.0
    for p, t in zip(ours, theirs):
        t = t.detach().numpy()
        err = np.abs(p.data - t) / np.maximum(1.0, np.abs(t))
        worst = max(worst, float(err.max()))
    return worst


def _torch_params(values):
    return [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]


# ---- agreement with torch ---------------------------------------------------------

@pytest.mark.parametrize("ours_cls, torch_cls, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch(ours_cls, torch_cls, kwargs):
    values, mats = _problem()
    ours, theirs = _ours(values), _torch_params(values)
    _run_ours(ours_cls(ours, **kwargs), ours, mats, STEPS)
    _run_torch(torch_cls(theirs, foreach=False, **kwargs), theirs, mats, STEPS)
    assert _max_diff(ours, theirs) < TOL
    assert not np.allclose(ours[0].data, values[0])  # it did move


def test_param_groups_with_different_hyper_parameters():
    values, mats = _problem(1)
    ours, theirs = _ours(values), _torch_params(values)
    opt = optim.SGD([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.01, "momentum": 0.5}],
                    lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.01, "momentum": 0.5}],
                          lr=0.1, momentum=0.9, foreach=False)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]
    _run_ours(opt, ours, mats, STEPS)
    _run_torch(ref, theirs, mats, STEPS)
    assert _max_diff(ours, theirs) < TOL


@pytest.mark.parametrize("cls", OURS)
def test_params_without_grad_are_skipped(cls):
    values, mats = _problem()
    params = _ours(values)
    opt = cls(params, lr=0.1)
    for _ in range(3):
        params[0].grad = _grad(params[0].data, mats[0])
        params[1].grad = None
        params[2].grad = _grad(params[2].data, mats[2])
        opt.step()
    assert np.array_equal(params[1].data, values[1])
    assert params[1] not in opt.state
    assert not np.array_equal(params[0].data, values[0])


@pytest.mark.parametrize("cls", OURS)
def test_step_updates_in_place_and_leaves_grad_alone(cls):
    values, mats = _problem()
    params = _ours(values)
    arrays = [p.data for p in params]
    kwargs = {"lr": 0.1, "weight_decay": 0.1}
    if cls in (optim.SGD, optim.RMSprop):
        kwargs["momentum"] = 0.9
    opt = cls(params, **kwargs)
    for _ in range(2):
        grads = [_grad(p.data, m) for p, m in zip(params, mats)]
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
        for p, g, a in zip(params, grads, arrays):
            assert p.data is a  # the model's reference still sees the new values
            assert np.array_equal(p.grad, g)


def test_zero_grad_sets_none_and_closure_is_returned():
    params = _ours(_problem()[0])
    for p in params:
        p.grad = np.ones_like(p.data)
    opt = optim.SGD(params, lr=0.1)
    assert opt.step(lambda: 3.5) == 3.5
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("cls", OURS)
def test_float32_stays_float32(cls):
    values, mats = _problem()
    params = _ours(values, np.float32)
    kwargs = {"lr": 0.01, "weight_decay": 0.1}
    if cls in (optim.SGD, optim.RMSprop):
        kwargs["momentum"] = 0.9
    if cls is optim.RMSprop:
        kwargs["centered"] = True
    if cls is optim.Adam:
        kwargs["amsgrad"] = True
    opt = cls(params, **kwargs)
    _run_ours(opt, params, mats, 5)
    for p in params:
        assert p.data.dtype == np.float32
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


# ---- state_dict ---------------------------------------------------------------------

@pytest.mark.parametrize("ours_cls, _torch_cls, kwargs", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_exact(ours_cls, _torch_cls, kwargs):
    values, mats = _problem()
    straight = _ours(values)
    _run_ours(ours_cls(straight, **kwargs), straight, mats, STEPS)

    resumed = _ours(values)
    first = ours_cls(resumed, **kwargs)
    _run_ours(first, resumed, mats, STEPS // 2)
    saved = first.state_dict()
    fresh = _ours([p.data for p in resumed])  # a new model: new parameter objects, saved values
    _run_ours(first, resumed, mats, 1)  # the old optimizer moving on must not leak into `saved`

    second = ours_cls(fresh, **kwargs)
    second.load_state_dict(saved)
    _run_ours(second, fresh, mats, STEPS - STEPS // 2)

    for a, b in zip(straight, fresh):
        assert np.array_equal(a.data, b.data)


def test_state_dict_layout_and_copies():
    values, mats = _problem()
    params, theirs = _ours(values), _torch_params(values)
    opt = optim.Adam(params, lr=0.1, amsgrad=True)
    ref = torch.optim.Adam(theirs, lr=0.1, amsgrad=True, foreach=False)
    _run_ours(opt, params, mats, 3)
    _run_torch(ref, theirs, mats, 3)
    saved, ref_saved = opt.state_dict(), ref.state_dict()

    assert saved["param_groups"][0]["params"] == ref_saved["param_groups"][0]["params"] == [0, 1, 2]
    assert saved["state"].keys() == ref_saved["state"].keys()
    for i in saved["state"]:
        assert saved["state"][i].keys() == ref_saved["state"][i].keys()
        assert saved["state"][i]["step"] == ref_saved["state"][i]["step"].item()
        np.testing.assert_allclose(saved["state"][i]["exp_avg"], ref_saved["state"][i]["exp_avg"].numpy(),
                                   rtol=0, atol=TOL)

    before = saved["state"][0]["exp_avg"].copy()
    _run_ours(opt, params, mats, 1)  # the live state moves on; the saved copy must not
    assert np.array_equal(saved["state"][0]["exp_avg"], before)
    saved["state"][0]["exp_avg"][...] = 0  # and editing the copy must not touch the optimizer
    assert not np.array_equal(opt.state[params[0]]["exp_avg"], 0)


def test_load_state_dict_restores_hyper_parameters():
    params = _ours(_problem()[0])
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1, momentum=0.9)
    other = optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.3)
    other.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in other.param_groups] == [0.1, 0.5]
    assert other.param_groups[1]["momentum"] == 0.9
    assert other.param_groups[1]["params"][0] is params[1]


def test_load_state_dict_mismatches():
    params = _ours(_problem()[0])
    saved = optim.Adam([{"params": params[:1]}, {"params": params[1:]}]).state_dict()
    with pytest.raises(ValueError, match=r"Adam\.load_state_dict.*2 parameter group.*has 1"):
        optim.Adam(params).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"Adam\.load_state_dict: parameter group 1 has 2 parameter.*but 1 in"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:2]}]).load_state_dict(saved)

    opt = optim.Adam(params)
    _run_ours(opt, params, _problem()[1], 1)
    saved = opt.state_dict()
    swapped = [params[1], params[0], params[2]]  # same count, wrong shapes
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(swapped).load_state_dict(saved)


# ---- construction errors ------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, name", [
    (optim.SGD, {"lr": -0.1}, "lr"),
    (optim.SGD, {"momentum": -0.5}, "momentum"),
    (optim.SGD, {"weight_decay": -1}, "weight_decay"),
    (optim.SGD, {"nesterov": True}, "nesterov"),
    (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    (optim.Adam, {"lr": -1e-3}, "lr"),
    (optim.Adam, {"eps": -1e-8}, "eps"),
    (optim.Adam, {"betas": (1.0, 0.999)}, r"betas\[0\]"),
    (optim.Adam, {"betas": (0.9, -0.1)}, r"betas\[1\]"),
    (optim.Adam, {"weight_decay": -0.1}, "weight_decay"),
    (optim.Adagrad, {"lr": -0.1}, "lr"),
    (optim.Adagrad, {"lr_decay": -0.1}, "lr_decay"),
    (optim.Adagrad, {"initial_accumulator_value": -1}, "initial_accumulator_value"),
    (optim.Adagrad, {"eps": -1}, "eps"),
    (optim.Adadelta, {"lr": -1}, "lr"),
    (optim.Adadelta, {"rho": 1.5}, "rho"),
    (optim.Adadelta, {"eps": -1}, "eps"),
    (optim.Adadelta, {"weight_decay": -1}, "weight_decay"),
    (optim.RMSprop, {"lr": -1}, "lr"),
    (optim.RMSprop, {"alpha": -0.1}, "alpha"),
    (optim.RMSprop, {"momentum": -0.1}, "momentum"),
    (optim.RMSprop, {"eps": -1}, "eps"),
    (optim.RMSprop, {"weight_decay": -1}, "weight_decay"),
])
def test_bad_hyper_parameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: .*{name}"):
        cls(_ours(_problem()[0]), **kwargs)


def test_bad_parameter_lists_raise():
    params = _ours(_problem()[0])
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": params[:2]}, {"params": params[1:]}], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(params[0], lr=0.1)


# ---- lr schedulers ------------------------------------------------------------------

SCHEDULERS = [
    (lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 7}),
    (lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
    (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 30}),
    (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 7}),
    (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 1}),
    (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 4, "eta_min": 0.01}),
]
SCHED_IDS = [f"{ours.__name__}-{kw}" for ours, _, kw in SCHEDULERS]


def _two_group_sgd(params, lib):
    return lib.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)


def _lr_sequence(scheduler, steps):
    lrs = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        assert lrs[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
    return np.array(lrs)


@pytest.mark.parametrize("ours_cls, torch_cls, kwargs", SCHEDULERS, ids=SCHED_IDS)
def test_scheduler_matches_torch(ours_cls, torch_cls, kwargs):
    values = _problem()[0]
    ours = ours_cls(_two_group_sgd(_ours(values), optim), **kwargs)
    theirs = torch_cls(_two_group_sgd(_torch_params(values), torch.optim), **kwargs)
    a, b = _lr_sequence(ours, 30), _lr_sequence(theirs, 30)
    assert np.abs(a - b).max() < 1e-12
    assert [g["initial_lr"] for g in ours.optimizer.param_groups] == [0.1, 0.3]
    assert ours.last_epoch == 30


@pytest.mark.parametrize("ours_cls, _torch_cls, kwargs", SCHEDULERS, ids=SCHED_IDS)
def test_scheduler_state_dict_round_trip(ours_cls, _torch_cls, kwargs):
    values = _problem()[0]
    straight = _lr_sequence(ours_cls(_two_group_sgd(_ours(values), optim), **kwargs), 30)

    first = ours_cls(_two_group_sgd(_ours(values), optim), **kwargs)
    head = _lr_sequence(first, 10)
    saved_opt, saved_sched = first.optimizer.state_dict(), first.state_dict()
    assert "optimizer" not in saved_sched

    opt = _two_group_sgd(_ours(values), optim)
    second = ours_cls(opt, **kwargs)  # as torch advises: scheduler first, then load both
    opt.load_state_dict(saved_opt)
    second.load_state_dict(saved_sched)
    assert second.last_epoch == 10
    tail = _lr_sequence(second, 20)
    assert np.array_equal(np.concatenate([head, tail[1:]]), straight)


def test_scheduler_rejects_bad_arguments():
    opt = optim.SGD(_ours(_problem()[0]), lr=0.1)
    with pytest.raises(TypeError):
        lr_scheduler.StepLR(object(), step_size=3)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
