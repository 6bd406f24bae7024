"""Provenance (zoo/run/provenance.py): what each invocation of a run records, and where it is shown again.

The git cases run ``git`` in temporary repositories (and are skipped, saying so, where git is absent); the
training runs are LeNet-5 on 32 generated MNIST images, one epoch, without drawing figures.
"""
import hashlib
import json
import shutil
import subprocess

import pytest
from support.formats import write_mnist
from support.isolation import isolate_from_user_data

from zoo import evaluate as evaluate_cli
from zoo import train as train_cli
from zoo.run import provenance as prov
from zoo.run import trainer
from zoo.run.checkpoint import read_meta
from zoo.studies.report import write_report

FAST = ["--verify", "structure", "--no-download", "--batch-size", "16", "--limit-test", "20", "--limit-train", "32"]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed on this machine")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist")
    return root


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    isolate_from_user_data(tmp_path, monkeypatch)
    for name in ("plot_curves", "plot_confusion"):     # the figures are most of a tiny run's time
        monkeypatch.setattr(trainer, name, lambda *args, **kwargs: None)


def cli(module, argv):
    try:
        return module.main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


def git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


# ----------------------------------------------------------------------------- the record

def test_record_has_every_field(tmp_path):
    data = tmp_path / "file.bin"
    data.write_bytes(b"minitorch" * 1000)
    record = prov.provenance("cpu", [data])
    assert json.loads(json.dumps(record)) == record                 # plain JSON
    assert set(record) == {"git", "blas", "cpu", "threads", "versions", "device", "data"}
    assert record["blas"], "numpy's BLAS should be visible to threadpoolctl"
    assert all({"library", "version", "kernel", "threads"} <= set(lib) for lib in record["blas"])
    assert record["cpu"]["isa"] in {None, "AVX-512", "AVX2", "AVX", "SSE4.2", "NEON"}
    assert record["threads"]["cpu_count"] >= 1 and record["threads"]["blas"] == [b["threads"] for b in record["blas"]]
    assert {"python", "numpy", "numba", "minitorch_cnn", "threadpoolctl"} <= set(record["versions"])
    assert record["device"] == "cpu"
    assert record["data"] == [{"file": str(data.resolve()), "bytes": 9000,
                               "sha256": hashlib.sha256(b"minitorch" * 1000).hexdigest()}]
    line = prov.describe(record)
    assert prov.blas_kernel(record) in line and "commit" in line


def test_isa_from_cpu_flags(monkeypatch):
    for flags, isa in (("fpu sse4_2 avx avx2 avx512f", "AVX-512"), ("sse4_2 avx avx2", "AVX2"), ("fpu", None)):
        monkeypatch.setattr(prov, "_cpuinfo", lambda flags=flags: {"model name": "Test CPU", "flags": flags})
        assert prov.cpu_info()["isa"] == isa
    monkeypatch.setattr(prov, "_cpuinfo", lambda: {})                 # no /proc/cpuinfo: platform's answer
    assert prov.cpu_info()["isa"] is None


def test_thread_environment_is_recorded(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert prov.thread_counts()["env"] == {"OMP_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"}


@needs_git
def test_git_commit_and_dirty_tree(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "code.py").write_text("x = 1\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    clean = prov.git_state(repo / "pkg")
    assert clean["commit"] == git(repo, "rev-parse", "HEAD") and clean["dirty"] is False and clean["changed"] == []
    (repo / "pkg" / "code.py").write_text("x = 2\n")
    dirty = prov.git_state(repo / "pkg")
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True and dirty["changed"] == ["pkg/code.py"]
    assert prov.short_commit({"git": dirty}) == clean["commit"][:7] + "+dirty"
    # Only the source paths count: a run's outputs written into the checkout leave it clean.
    (repo / "results").mkdir()
    (repo / "results" / "metrics.csv").write_text("epoch\n1\n")
    git(repo, "checkout", "-q", "--", "pkg/code.py")
    assert prov.git_state(repo, paths=("pkg",))["dirty"] is False
    assert prov.git_state(repo)["changed"] == ["results/metrics.csv"]
    # A package copied into an untracked (e.g. ignored venv) folder of some checkout is not that checkout.
    (repo / "venv" / "pkg").mkdir(parents=True)
    installed = prov.git_state(repo / "venv" / "pkg")
    assert installed["commit"] is None and "not tracked" in installed["reason"]


def test_no_git_checkout_and_no_git(tmp_path, monkeypatch):
    plain = tmp_path / "site-packages"
    plain.mkdir()
    if shutil.which("git") is not None:
        outside = prov.git_state(plain)
        assert outside["commit"] is None and "not a git checkout" in outside["reason"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))                # a machine without git
    missing = prov.git_state(plain)
    assert missing == {"commit": None, "reason": "git is not installed"}
    assert prov.short_commit({"git": missing}) == "no git"


# ----------------------------------------------------------------------------- in a run, its resumption, reports

def test_each_invocation_records_its_provenance(data_dir, tmp_path, monkeypatch, capsys):
    """A run resumed at another commit lists both, in config.json and the checkpoint; zoo.evaluate and the
    study report show them and say that the commits differ."""
    out = tmp_path / "study" / "lenet"
    commits = iter([{"commit": "a" * 40, "dirty": False, "changed": [], "root": "/r"},
                    {"commit": "b" * 40, "dirty": True, "changed": ["x.py"], "root": "/r"},
                    {"commit": "c" * 40, "dirty": False, "changed": [], "root": "/r"}])     # the evaluation
    monkeypatch.setattr(prov, "git_state", lambda *args, **kwargs: next(commits))
    assert cli(train_cli, ["lenet5", "mnist", "--data-dir", data_dir, "--out", out, *FAST, "--epochs", "1"]) == 0
    assert cli(train_cli, ["lenet5", "mnist", "--out", out, "--resume", "--epochs", "2", "--data-dir", data_dir,
                           "--verify", "structure", "--no-download"]) == 0
    config = json.loads((out / "config.json").read_text())
    invocations = config["invocations"]
    assert [inv["from_epoch"] for inv in invocations] == [0, 1]
    assert [inv["provenance"]["git"]["commit"] for inv in invocations] == ["a" * 40, "b" * 40]
    assert config["versions"] == invocations[-1]["provenance"]["versions"]
    files = sorted((data_dir / "mnist").iterdir())
    recorded = invocations[0]["provenance"]["data"]
    assert sorted(r["file"] for r in recorded) == [str(f.resolve()) for f in files]
    assert {r["file"]: r["sha256"] for r in recorded} == {
        str(f.resolve()): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert read_meta(out)["invocations"] == invocations              # the checkpoint carries the same
    capsys.readouterr()

    assert cli(evaluate_cli, [out, "--verify", "structure", "--limit-test", "20"]) == 0
    printed = capsys.readouterr().out
    trained = [line for line in printed.splitlines() if line.startswith("  trained")]
    assert len(trained) == 2 and "commit aaaaaaa," in trained[0] and "commit bbbbbbb+dirty," in trained[1]
    evaluated = [line for line in printed.splitlines() if line.startswith("  evaluated")]
    assert len(evaluated) == 1 and "commit ccccccc," in evaluated[0]
    assert prov.blas_kernel(invocations[0]["provenance"]) in evaluated[0]

    report = write_report(out.parent).read_text()
    assert "aaaaaaa " in report and "→ bbbbbbb+dirty " in report        # the column, both invocations
    assert "**the runs differ in commit** (aaaaaaa: lenet; bbbbbbb: lenet)" in report
    assert "one BLAS kernel for every recorded run" in report
    assert "uncommitted changes: lenet" in report


def test_report_names_runs_without_provenance(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist", "epochs": 1,
                                                 "invocations": [{"argv": []}]}))
    report = write_report(tmp_path).read_text()
    assert "not recorded (runs from before provenance was recorded): old" in report
