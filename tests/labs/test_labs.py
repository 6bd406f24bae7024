"""The nine labs in docs/labs: each runs as a script (LABS_QUICK=1, MPLBACKEND=Agg), with no dataset
configured (MINITORCH_DATA unset, an empty HOME), and every check it prints passes and its summary says
so; lab 4 also passes with no dataset at all (LABS_DATA=generated); a failed check makes a lab exit 1;
every check function fails on a planted wrong implementation and passes on a right one; the student copy
of each lab (python -m minitorch_cnn.lab.student) runs to its summary naming its unfinished exercises,
exits 1 and prints no traceback."""
import os
import re
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import Function, nn
from minitorch_cnn import functional as F
from minitorch_cnn.kernels import reference

ROOT = Path(__file__).resolve().parents[2]
LABS_DIR = ROOT / "docs" / "labs"
LABS = sorted(LABS_DIR.glob("[0-9][0-9]_*.py"))
CHECK_LINE = re.compile(r"\(expect .+\): (ok|FAIL)$")
sys.path.insert(0, str(LABS_DIR))
import labcheck  # noqa: E402

from minitorch_cnn.lab import student  # noqa: E402


def test_there_are_nine_labs():
    assert [p.name[:2] for p in LABS] == [f"{i:02d}" for i in range(1, 10)]


def run_lab(path, tmp_path, **env_vars):
    """Run a lab as a student would on a fresh laptop: no MINITORCH_DATA, an empty home (so no
    ~/.cache/minitorch_cnn); returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k not in ("MINITORCH_DATA", "XDG_CACHE_HOME", "LABS_DATA")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(LABS_QUICK="1", MPLBACKEND="Agg", LABS_FIGURES=str(tmp_path / "figures"), HOME=str(home),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env_vars)
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True, text=True,
                         timeout=400)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return run


def assert_every_check_passed(run, tmp_path):
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    checks = [line for line in run.stdout.splitlines() if CHECK_LINE.search(line)]
    failed = [line for line in checks if line.endswith("FAIL")]
    assert len(checks) >= 2 and not failed, "\n".join(failed or ["no check lines printed"])
    tally = re.search(r"\n(\d+) of (\d+) checks passed$", run.stdout.rstrip())   # labcheck's own count
    assert tally and tally[1] == tally[2] and int(tally[2]) >= 2, run.stdout[-1000:]
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 1            # the lab drew its figure


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_lab_runs_and_every_check_passes(lab, tmp_path):
    assert_every_check_passed(run_lab(lab, tmp_path), tmp_path)


def test_lab4_passes_with_no_dataset_anywhere(tmp_path):
    """LABS_DATA=generated hides MNIST and Fashion-MNIST wherever they are (a laptop has neither)."""
    run = run_lab(LABS_DIR / "04_lenet5.py", tmp_path, LABS_DATA="generated")
    assert "python -m minitorch_cnn.data.fetch mnist" in run.stdout      # says how to get the real data
    assert_every_check_passed(run, tmp_path)


def test_a_failed_check_fails_the_lab(tmp_path):
    lab = tmp_path / "09_failing.py"
    lab.write_text("from labcheck import report, summary\nreport('one', 1, '== 1', True)\n"
                   "report('two', 2, '== 3', False)\nsummary()\n")
    (tmp_path / "labcheck.py").write_text((LABS_DIR / "labcheck.py").read_text())
    run = run_lab(lab, tmp_path)
    assert run.returncode == 1 and "1 of 2 checks passed (1 FAILED)" in run.stdout, run.stdout + run.stderr


def test_labs_write_figures_to_an_ignored_output_folder_by_default():
    """Running a lab must not rewrite the committed figures in docs/labs/figures."""
    env = {k: v for k, v in os.environ.items() if k != "LABS_FIGURES"}
    run = subprocess.run([sys.executable, "-c", "import labcheck; print(labcheck.FIGURES)"], cwd=LABS_DIR, env=env,
                         capture_output=True, text=True, timeout=120)
    assert Path(run.stdout.strip()) == LABS_DIR / "output", run.stdout + run.stderr


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_student_copy_hides_the_answers(lab):
    text = lab.read_text()
    copy = student.student_copy(text, int(lab.name[:2]))
    code_blocks = len(re.findall(r'NotImplementedError\("exercise \d\.\d \([\w.]+\)"\)', copy))
    assert text.count("# BEGIN SOLUTION") >= 1 and "SOLUTION" not in copy and "[solution]" not in copy
    assert code_blocks + copy.count("*(your answer here)*") == text.count("# BEGIN SOLUTION")
    compile(copy, lab.name, "exec")


GIVEAWAYS = {"01": ["1 - y ** 2", "1 - tanh(x)^2", "1 - y^2", "instead of sigmoid", "sigmoid"], "05": ["1/N + 1/k^2"],
             "07": ["main_weight * CE", "main_weight * F.cross_entropy"],
             "09": ["da.mean(axis=(1, 2))", "fc_weight[label] / (h * w)", "+= gy["]}


@pytest.mark.parametrize("number", sorted(GIVEAWAYS))
def test_student_copy_does_not_give_the_answer_away(number):
    lab = next(p for p in LABS if p.name.startswith(number))
    copy = student.student_copy(lab.read_text(), int(number))
    assert [text for text in GIVEAWAYS[number] if text in copy] == []


@pytest.fixture(scope="module")
def student_copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert student.main([str(LABS_DIR), "-o", str(out)]) == 0
    return out


def test_student_writes_every_lab_and_labcheck_into_a_folder(student_copies):
    assert sorted(p.name for p in student_copies.glob("*.py")) == sorted([p.name for p in LABS] + ["labcheck.py"])


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_student_copy_runs_to_its_summary(lab, student_copies, tmp_path):
    run = run_lab(student_copies / lab.name, tmp_path)
    number = lab.name[:2].lstrip("0")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert re.search(rf"exercise {number}\.1 \([\w.]+\): not implemented yet", run.stdout), run.stdout
    assert re.search(r"\d+ of \d+ checks passed \(\d+ FAILED\)$", run.stdout.rstrip()), run.stdout[-2000:]


def test_student_rejects_unbalanced_markers_and_non_labs(tmp_path):
    with pytest.raises(ValueError, match="never closed"):
        student.student_copy("    # BEGIN SOLUTION\n    x = 1\n")
    with pytest.raises(ValueError, match="without a BEGIN"):
        student.student_copy("# END SOLUTION\n")
    (tmp_path / "notes.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="expected a lab file NN_name.py"):
        student.write_student_copies([tmp_path / "notes.py"], tmp_path / "out")


# ------------------------------------------------------------ right and planted wrong implementations
class Tanh(Function):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y ** 2)


class TanhWrongBackward(Tanh):
    def backward(self, gy):
        return gy * (1 - self.y)                        # planted: forgot the square


def conv(x, w, b, stride, pad):
    return F.conv2d(mt.Tensor(x), mt.Tensor(w), mt.Tensor(b), stride=stride, padding=pad).data


def conv_backward(dout, x, w, stride, pad, planted=False):
    xs = [mt.Tensor(a, requires_grad=True) for a in (x, w, np.zeros(w.shape[0]))]
    (F.conv2d(*xs, stride=stride, padding=pad) * mt.Tensor(dout)).sum().backward()
    db = dout.sum(axis=(0, 2, 3)) if not planted else dout.sum(axis=(0, 2))[:, 0]   # planted: db misses a sum
    return xs[0].grad, xs[1].grad, db


def im2col(x, kh, kw, stride, pad):
    out_hw = ((x.shape[2] + 2 * pad - kh) // stride + 1, (x.shape[3] + 2 * pad - kw) // stride + 1)
    return reference.im2col(x, (kh, kw), (stride, stride), (pad, pad), (1, 1), out_hw)


def max_pool_backward(dout, x, k, planted=False):
    t = mt.Tensor(x, requires_grad=True)
    out = F.avg_pool2d(t, k) if planted else F.max_pool2d(t, k)          # planted: spread evenly
    (out * mt.Tensor(dout)).sum().backward()
    return t.grad


def batch_norm(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5, unbiased=True):
    if training:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        m = x.size // x.shape[1]
        rm[:] = (1 - momentum) * rm + momentum * mean
        rv[:] = (1 - momentum) * rv + momentum * var * (m / (m - 1) if unbiased else 1)
    else:
        mean, var = rm, rv
    shape = (1, -1, 1, 1)
    return gamma.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) + beta.reshape(shape)


def lenet(bias=True):
    return nn.Sequential(OrderedDict([("c1", nn.Conv2d(1, 6, 5, bias=bias)), ("c2", nn.Conv2d(6, 16, 5)),
                                      ("f1", nn.Linear(400, 120)), ("f2", nn.Linear(120, 84)),
                                      ("f3", nn.Linear(84, 10))]))


def grouped(x, w, groups, pad):
    return F.conv2d(mt.Tensor(x), mt.Tensor(w), padding=pad, groups=groups).data


def grouped_wrong(x, w, groups, pad):     # planted: every group reads the first group's channels
    c, f = x.shape[1] // groups, w.shape[0] // groups
    return np.concatenate([grouped(x[:, :c], w[g * f:(g + 1) * f], 1, pad) for g in range(groups)], axis=1)


def basic_block_without_shortcut():
    from zoo.models.resnet import BasicBlock

    class NoShortcut(BasicBlock):         # planted: the residual add is missing
        def forward(self, x):
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
    return NoShortcut


def zero_gamma_block(zero):
    from zoo.models.resnet import BasicBlock
    mt.manual_seed(0)
    block = BasicBlock(4, 4).double()
    if zero:
        block.bn2.weight.data[:] = 0
        block.bn2.bias.data[:] = 0
    return block


def aux_loss(outs, y, aux_weight, main_weight, planted=False):
    main = F.cross_entropy(outs[0], y)
    main = main if planted else main_weight * main                     # planted: main weight ignored
    return main + aux_weight * (F.cross_entropy(outs[1], y) + F.cross_entropy(outs[2], y))


def relu6_kernel(x, y, mask, high=6.0):
    y[:], mask[:] = reference.clamp_forward(x, high)


def im2col_kernel(x, cols, kh, kw, s, p, ho, wo, planted=False):
    cols[:] = reference.im2col(x, (kh, kw), (s, s), (p, p), (1, 1), (ho, wo))
    if planted:                              # planted: windows read one pixel too far right
        cols[:] = reference.im2col(np.roll(x, -1, axis=3), (kh, kw), (s, s), (p, p), (1, 1), (ho, wo))


X6 = np.random.default_rng(0).standard_normal((2, 4, 6, 6))
CASES = {   # check: (right arguments, planted-wrong arguments)
    "check_function": ((Tanh, np.tanh), (TanhWrongBackward, np.tanh)),
    "check_conv_forward": ((conv,), (lambda x, w, b, s, p: conv(x, w[:, :, ::-1, ::-1], b, s, p),)),  # flipped
    "check_im2col": ((im2col,), (lambda x, kh, kw, s, p: im2col(x, kw, kh, s, p) if kh != kw
                                 else im2col(x.transpose(0, 1, 3, 2), kh, kw, s, p),)),           # transposed
    "check_conv_backward": ((conv_backward,), (lambda *a: conv_backward(*a, planted=True),)),
    "check_max_pool_backward": ((max_pool_backward,), (lambda *a: max_pool_backward(*a, planted=True),)),
    "check_batch_norm": ((batch_norm,), (lambda *a, **k: batch_norm(*a, **k, unbiased=False),)),
    "check_saturation": ((lambda a: np.mean(a >= 6),), (lambda a: np.mean(a > 6),)),
    "check_parameter_count": ((lenet(), 61706), (lenet(bias=False), 61706)),
    "check_initial_loss": ((2.31,), (4.6,)),
    "check_grouped_conv": ((grouped,), (grouped_wrong,)),
    "check_mac_ratio": ((lambda n, k: 1 / n + 1 / k ** 2,), (lambda n, k: 1 / n + 1 / k,)),
    "check_basic_block": ((__import__("zoo.models.resnet").models.resnet.BasicBlock,),
                          (basic_block_without_shortcut(),)),
    "check_identity": ((zero_gamma_block(True), X6), (zero_gamma_block(False), X6)),
    "check_inception_channels": ((lambda a, b, c, d, e, f: a + c + e + f,),
                                 (lambda a, b, c, d, e, f: a + b + c + d + e + f,)),
    "check_aux_loss": ((aux_loss,), (lambda *a: aux_loss(*a, planted=True),)),
    "check_relu6_kernel": ((relu6_kernel,), (lambda x, y, m: relu6_kernel(x, y, m, high=None),)),
    "check_im2col_kernel": ((im2col_kernel,), (lambda *a: im2col_kernel(*a, planted=True),)),
}


def test_every_check_function_is_covered():
    checks = {name for name in dir(labcheck) if name.startswith("check_") and name != "check_close"}
    assert checks == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_passes_right_and_fails_planted_wrong(name, capsys):
    right, wrong = CASES[name]
    check = getattr(labcheck, name)
    assert check(*right) is True, capsys.readouterr().out
    assert check(*wrong) is False
    assert "FAIL" in capsys.readouterr().out
