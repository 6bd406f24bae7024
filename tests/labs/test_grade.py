"""The offline grader (python -m minitorch_cnn.lab.grade): its hidden checks pass every solution in
docs/labs, fail every exercise of every student copy, and fail a bank of planted bugs, one per graded
exercise, each a one-line change to the solution; it says where, and writes JUnit and JSON."""
import json
import re
import shutil
from pathlib import Path

import pytest

from minitorch_cnn.lab import grade, student

LABS_DIR = Path(__file__).resolve().parents[2] / "docs" / "labs"
LABS = sorted(LABS_DIR.glob("[0-9][0-9]_*.py"))
FEW = 10             # hypothesis examples per check here: enough to hit each planted bug, and quick

# (lab, graded function, solution line, planted line): each makes that exercise wrong
PLANTED = [
    ("01", "Tanh", "return gy * (1 - self.y ** 2)", "return gy * (1 - self.y)"),
    ("01", "Softplus", "return gy / (1 + np.exp(-self.x))", "return gy * np.exp(self.x)"),
    ("01", "numeric_gradient", "grad[i] = (up - down) / (2 * h)", "grad[i] = (up - down) / h"),
    ("02", "conv_naive", "out[i, k, r, s] = (window * w[k]).sum() + b[k]", "out[i, k, r, s] = (window * w[k]).sum()"),
    ("02", "im2col_naive", "cols[:, (i * ho + r) * wo + s] = window.reshape(-1)",
     "cols[:, (i * ho + r) * wo + s] = window.transpose(0, 2, 1).reshape(-1)"),
    ("02", "conv_im2col", "return y.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)", "return y.reshape(n, f, ho, wo)"),
    ("02", "conv_backward_naive", "dxp[i, :, rows, cols_] += dout[i, k, r, s] * w[k]",
     "dxp[i, :, rows, cols_] = dout[i, k, r, s] * w[k]"),                  # '=' for '+=': wrong where windows overlap
    ("02", "im2col_vectorised", "cols[:, i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]",
     "cols[:, i, j] = xp[:, :, j:j + stride * ho:stride, i:i + stride * wo:stride]"),     # taps swapped
    ("03", "batch_norm_backward", "                        - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True))",
     "                        )"),                                        # one of the three paths to x missed
    ("03", "max_pool_backward", "winner = window.argmax(axis=2)", "winner = window.argmin(axis=2)"),
    ("03", "batch_norm", "running_var += momentum * var * m / (m - 1)", "running_var += momentum * var"),
    ("03", "saturated_fraction", "np.mean(a >= 6.0)", "np.mean(a > 6.0)"),
    ("04", "MyLeNet5", '("pool1", nn.AvgPool2d(2))', '("pool1", nn.MaxPool2d(2))'),
    ("05", "grouped_conv", "mt.Tensor(x[:, g * c:(g + 1) * c])", "mt.Tensor(x[:, :c])"),
    ("05", "separable_ratio", "return 1 / n_out + 1 / k ** 2", "return 1 / n_out + 1 / k"),
    ("06", "BasicBlock", "return self.relu(out + self.shortcut(x))", "return self.relu(out)"),
    ("06", "zero_init_last_bn", "block.bn2.bias.data[:] = 0", "block.bn1.bias.data[:] = 0"),
    ("07", "inception_out_channels", "return n1x1 + n3x3 + n5x5 + pool_proj", "return n1x1 + n3x3 + n5x5"),
    ("07", "five_by_five_weights", "c_in * reduce + reduce * c_out * 25", "c_in * reduce * 25 + reduce * c_out * 25"),
    ("07", "googlenet_loss", "return main_weight * F.cross_entropy(logits, y) +",
     "return F.cross_entropy(logits, y) +"),
    ("08", "relu6_thread", "mask[i] = 0.0 < v < 6.0", "mask[i] = 0.0 <= v <= 6.0"),
    ("08", "im2col_thread", "iy, ix = oy * s + i - p, ox * s + j - p", "iy, ix = oy * s + i - p, ox * s + j"),
    ("09", "gradcam_from_parts", "weights = da.mean(axis=(1, 2))", "weights = da.sum(axis=(1, 2))"),
    ("09", "gap_head_weights", "return fc_weight[label] / (h * w)", "return fc_weight[label]"),
    ("09", "occlusion", "j * stride:j * stride + patch] = baseline", "j * stride:j * stride + patch] = 0.0"),
    ("09", "cascade", "out.append((name, A.spearman(reference, method(randomised, x, label))))",
     "out.append((name, A.spearman(np.abs(reference), method(model, x, label))))"),
    ("09", "FixedMaxPoolFunction", "gx[n, c, i * sh - ph + tap // kw, j * sw - pw + tap % kw] += gy[n, c, i, j]",
     "gx[n, c, i * sh - ph + tap // kw, j * sw - pw + tap % kw] = gy[n, c, i, j]"),
]


def lab_file(number):
    return next(p for p in LABS if p.name.startswith(number))


def test_every_graded_exercise_has_a_planted_bug():
    assert sorted(name for _, name, _, _ in PLANTED) == sorted(grade.GRADERS)


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_solutions_pass_and_student_copies_fail(lab, tmp_path):
    results = grade.grade(lab, FEW)
    assert results and all(r["passed"] for r in results), [r for r in results if not r["passed"]]
    copy = tmp_path / lab.name
    student.write_student_copies([lab], tmp_path)
    failed = grade.grade(copy, FEW)
    assert [r["function"] for r in failed] == [r["function"] for r in results]
    assert all(not r["passed"] and r["message"] == "not implemented yet" for r in failed), failed


@pytest.mark.parametrize("number,name,right,wrong", PLANTED, ids=[p[1] for p in PLANTED])
def test_planted_bug_is_caught(number, name, right, wrong, tmp_path):
    source = lab_file(number).read_text()
    assert source.count(right) == 1, f"the planted bug's line is not in lab {number} once"
    planted = tmp_path / lab_file(number).name
    planted.write_text(source.replace(right, wrong))
    shutil.copyfile(LABS_DIR / "labcheck.py", tmp_path / "labcheck.py")
    namespace = grade.load_definitions(planted)
    passed, message = grade.run_check(namespace[name], grade.GRADERS[name], FEW)
    assert not passed and message, message
    print(f"{name}: {message}")


def test_overlapping_windows_bug_is_located(tmp_path):
    """The '=' for '+=' conv backward is wrong only where windows overlap: the message names an element."""
    number, name, right, wrong = next(p for p in PLANTED if p[1] == "conv_backward_naive")
    planted = tmp_path / lab_file(number).name
    planted.write_text(lab_file(number).read_text().replace(right, wrong))
    shutil.copyfile(LABS_DIR / "labcheck.py", tmp_path / "labcheck.py")
    passed, message = grade.run_check(grade.load_definitions(planted)[name], grade.GRADERS[name], FEW)
    assert not passed and message.startswith("wrong at dx, stride=") and "first at (n=" in message, message


def test_command_line_writes_junit_and_json(tmp_path, capsys):
    student.write_student_copies([lab_file("05")], tmp_path)
    junit, report = tmp_path / "grade.xml", tmp_path / "grade.json"
    code = grade.main([str(tmp_path / lab_file("05").name), "--junit", str(junit), "--json", str(report),
                       "--examples", "3"])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL exercise 5.1 (grouped_conv): not implemented yet" in out
    assert '<testsuite name="05_mobilenet" tests="2" failures="2">' in junit.read_text()
    data = json.loads(report.read_text())
    assert data["passed"] == 0 and data["total"] == 2 and data["exercises"][0]["function"] == "grouped_conv"
    assert grade.main([str(lab_file("05")), "--examples", "3"]) == 0


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_exercise_numbers_match_the_student_copy(lab):
    """The grader numbers each graded exercise as the student copy's NotImplementedError does."""
    copy = student.student_copy(lab.read_text(), int(lab.name[:2]))
    marked = {}
    for number, dotted in re.findall(r'NotImplementedError\("exercise ([\d.]+) \(([\w.]+)\)"\)', copy):
        marked.setdefault(dotted.split(".")[0], f"exercise {number} ({dotted.split('.')[0]})")
    labels = grade.exercise_labels(lab)
    graded = [name for name in grade.GRADERS if name in marked]
    assert graded and {name: labels.get(name) for name in graded} == {name: marked[name] for name in graded}


def test_a_finished_copy_keeps_its_exercise_numbers(tmp_path):
    """A student who has written every exercise has no markers left: the report still says 'exercise 2.1'."""
    lab = lab_file("02")
    finished = re.sub(r"^\s*# (BEGIN|END) SOLUTION\n", "", lab.read_text(), flags=re.M)
    (tmp_path / lab.name).write_text(finished)
    shutil.copyfile(LABS_DIR / "labcheck.py", tmp_path / "labcheck.py")
    results = grade.grade(tmp_path / lab.name, 3)
    assert {r["function"]: r["exercise"] for r in results}["conv_naive"] == "exercise 2.1 (conv_naive)"
    assert all(r["passed"] and re.match(r"exercise 2\.\d \(", r["exercise"]) for r in results), results
