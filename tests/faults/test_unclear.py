"""Issue 20's unclear outcomes (tracebacks, misleading or silent results): each is now one clear line on
stderr and a non-zero exit, or one clear exception naming what was expected and what came."""
import io
import json
import os
import pickle

import numpy as np
import pytest
from conftest import cli, error_lines, train

from minitorch_cnn import Tensor
from minitorch_cnn.data import DataError
from minitorch_cnn.data.cifar import parse_cifar_pickle
from minitorch_cnn.optim import SGD
from zoo import evaluate as evaluate_cli
from zoo.run.checkpoint import FILENAME

# ----------------------------------------------------------------------------- hand-edited checkpoint metadata

def rewrite_meta(path, edit):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    edit(meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, named", [
    (lambda m: m.pop("position"), "position"),
    (lambda m: m.__setitem__("history", "none"), "history"),
    (lambda m: m["position"].__setitem__("batch", -3), "position.batch"),
    (lambda m: m.__setitem__("in_channels", "one"), "in_channels"),
    (lambda m: m["config"].pop("lr"), "config"),
])
def test_hand_edited_metadata_is_refused_before_anything_is_written(data_dir, tmp_path, capsys, edit, named):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    rewrite_meta(out / FILENAME, edit)
    config = (out / "config.json").read_bytes()
    capsys.readouterr()
    assert train(data_dir, out, "--resume", "--epochs", "2") == 1
    line = error_lines(capsys)[-1]
    assert line.startswith("error: ") and named in line and "checkpoint" in line, line
    assert (out / "config.json").read_bytes() == config
    assert cli(evaluate_cli, [out, "--verify", "structure"]) == 1
    assert named in error_lines(capsys)[-1]


# ----------------------------------------------------------------------------- data

def test_a_forbidden_pickle_is_a_data_error():
    evil = pickle.dumps({"data": os.system}, protocol=2)
    with pytest.raises(DataError, match="forbidden global"):
        parse_cifar_pickle(evil, "data_batch_1")


def test_a_protocol_2_pickle_written_by_python_3_is_read():
    images, labels = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072), [3, 7]
    raw = pickle.dumps({"data": images, "labels": labels, "batch_label": "b"}, protocol=2)
    x, y = parse_cifar_pickle(raw, "data_batch_1")
    assert x.shape == (2, 3, 32, 32) and np.array_equal(x.reshape(2, -1), images) and list(y) == [3, 7]


def test_a_typo_in_data_dir_is_one_line_and_creates_nothing(data_dir, tmp_path, capsys):
    typo = tmp_path / "dtaa"
    assert cli(__import__("zoo.train").train, ["tiny", "mnist", "--data-dir", typo, "--out", tmp_path / "run",
                                               "--epochs", "1"]) == 1
    line = error_lines(capsys)[-1]
    assert "does not exist" in line and str(typo) in line, line
    assert not typo.exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert train(data_dir, tmp_path / "run", "--data-dir", a_file, "--epochs", "1") == 1
    assert "not a folder" in error_lines(capsys)[-1]


def test_missing_cifar10_names_every_folder_looked_in_and_every_url_tried(tmp_path, capsys):
    """Offline, with no data anywhere: the message lists the folders searched and, when a download was tried,
    each URL with its failure (never an empty 'Looked in' or 'tried:' list)."""
    from minitorch_cnn.data import load_dataset
    from zoo import train as train_cli
    empty, cache = tmp_path / "empty", tmp_path / "xdg-cache" / "minitorch_cnn"       # the conftest's cache
    empty.mkdir()
    assert cli(train_cli, ["lenet5", "cifar10", "--data-dir", empty, "--out", tmp_path / "run", "--no-download"]) == 1
    err = capsys.readouterr().err
    looked = err.split("Looked in (none of these folders holds all of them):\n")[1].split("\ndownload=False")[0]
    assert looked.splitlines() == [f"  {root / sub}" for root in (empty, cache)
                                   for sub in ("cifar10/cifar-10-batches-bin", "cifar10/cifar-10-batches-py",
                                               "cifar10", "cifar-10-batches-bin", "cifar-10-batches-py", ".")]
    nowhere = (tmp_path / "nowhere").as_uri()
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", "train", data_dir=empty, mirrors=[nowhere])
    message = str(caught.value)
    assert f"  {empty / 'cifar10'}\n" in message and f"  {cache}\n" in message
    for archive in ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"):
        assert f"could not download {archive} into {empty / 'cifar10'}; tried:\n  {nowhere}/{archive}: " in message


def test_an_empty_split_is_refused(data_dir, tmp_path, capsys, monkeypatch):
    from minitorch_cnn.data import datasets
    original = datasets.Dataset.limit
    monkeypatch.setattr(datasets.Dataset, "limit", lambda self, n, stratified=False: original(self, 0))
    assert train(data_dir, tmp_path / "run", "--epochs", "1", "--limit-train", "16") == 1
    line = error_lines(capsys)[-1]
    assert "no images" in line, line
    assert not (tmp_path / "run" / "metrics.csv").exists()


# ----------------------------------------------------------------------------- the folder after a kill

def test_temporaries_of_a_killed_writer_are_removed_by_the_next_run(data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    left = out / f".checkpoint.npz.tmp-{dead}-0123abcd"
    left.write_bytes(b"half a checkpoint")
    (out / ".lock").write_text(f"{dead}\n")                  # and its stale lock
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    assert not left.exists() and not (out / ".lock").exists()


# ----------------------------------------------------------------------------- broken pipe

def test_evaluate_into_a_closed_pipe_is_quiet(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    capsys.readouterr()

    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", Closed())
    status = cli(evaluate_cli, [out, "--verify", "structure", "--limit-test", "20"])
    monkeypatch.undo()
    assert status == 141 and "Broken pipe" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- library API

@pytest.mark.parametrize("data", [object(), "text", None, [1j, 2j], np.array(["a"])])
def test_tensor_refuses_data_that_is_not_numbers(data):
    with pytest.raises(TypeError, match="Tensor: expected"):
        Tensor(data)


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0, 2.0]) * 2).sum().backward()


def test_backward_with_a_wrongly_shaped_gradient_raises():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(ValueError, match=r"backward\(\): expected a gradient of shape \(1, 2\)"):
        (x * 2).backward(np.ones(3))


@pytest.mark.parametrize("lr", ["0.1", None, [0.1]])
def test_an_optimizer_refuses_a_non_number_hyper_parameter(lr):
    with pytest.raises(TypeError, match="SGD: lr must be a real number"):
        SGD([Tensor([1.0], requires_grad=True)], lr=lr)



# ----------------------------------------------------------------------------- the study tool

STUDY = """name = "faults"
[defaults]
dataset = "mnist"
epochs = 1
limit_train = 16
limit_test = 20
batch_size = 16
verify = "structure"
download = false
[[runs]]
name = "a"
model = "tiny"
[[runs]]
name = "b"
model = "tiny"
seed = 1
"""


@pytest.mark.parametrize("corrupt", ["config.json", "metrics.csv"])
def test_a_corrupt_file_in_one_run_folder_does_not_abort_the_study(data_dir, tmp_path, capsys, corrupt):
    from zoo import study
    spec, out = tmp_path / "s.toml", tmp_path / "study"
    spec.write_text(STUDY)
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir]) == 0
    (out / "a" / corrupt).write_bytes(b"\x00garbage,\n1,2,3,4\n{")
    (out / "b" / "metrics.csv").unlink()                      # b must be resumed and reported
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir]) == 0
    assert "Traceback" not in capsys.readouterr().err
    from zoo.studies.report import read_metrics
    assert len(read_metrics(out / "b")) == 1                 # repaired from b's checkpoint by its resume
    report = (out / "report.md").read_text()
    if corrupt == "metrics.csv":                              # repaired the same way
        assert len(read_metrics(out / "a")) == 1 and "unreadable" not in report
    else:                                                     # reported as such, the other run as usual
        assert "config.json is unreadable" in report
    assert cli(study, ["--report", out]) == 0


def test_a_corrupt_study_record_is_one_line(data_dir, tmp_path, capsys):
    from zoo import study
    spec, out = tmp_path / "s.toml", tmp_path / "study"
    spec.write_text(STUDY)
    out.mkdir()
    (out / "study.json").write_text("{not json")
    assert cli(study, [spec, "--out", out, "--data-dir", data_dir]) == 1
    assert "study.json is unreadable" in error_lines(capsys)[-1]
    assert cli(study, ["--report", out]) == 1
    assert "study.json is unreadable" in error_lines(capsys)[-1]


@pytest.mark.parametrize("text, message", [(b'name = "x"\nruns = 5\n', "runs must be [[runs]] tables"),
                                           (b'name = "x\xff"\n', "is not UTF-8"),
                                           (b'name = "x"\ngrid = 3\n', "grid must be a [grid] table")])
def test_malformed_specs_are_one_line(tmp_path, capsys, text, message):
    from zoo import study
    (tmp_path / "s.toml").write_bytes(text)
    assert cli(study, [tmp_path / "s.toml", "--out", tmp_path / "o"]) == 1
    assert message in error_lines(capsys)[-1]
