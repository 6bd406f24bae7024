"""``zoo.study`` on a Dask cluster (zoo/studies/cluster.py), on this machine's loopback only.

Every run is a real ``python -m zoo.train`` process (tiny LeNet-5 runs on generated MNIST-format files), so
the registered test models of test_study.py are not available here. One LocalCluster of two single-threaded
worker processes serves the in-process tests; the Ctrl-C test starts its own (``--workers 2``) in a
coordinator subprocess, and the last tests start ``dask scheduler`` and two ``dask worker`` processes as a
user would. The reference for every metric is the same study run serially, in-process, as before Dask.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.formats import write_mnist

distributed = pytest.importorskip("distributed", reason="zoo.study --workers/--scheduler needs Dask: "
                                  "pip install -e '.[cluster]' (it is in the dev extra)")
import psutil  # noqa: E402  (distributed's own dependency)

from zoo import study  # noqa: E402
from zoo.studies import load_spec, run_study  # noqa: E402
from zoo.studies.cluster import Cluster  # noqa: E402
from zoo.studies.report import UnreadableRun, read_metrics  # noqa: E402

TIMING = ("epoch_seconds", "train_images_per_s")
EPOCHS = 3
SPEC = f"""
name = "tiny-cluster"
[defaults]
model = "lenet5"
dataset = "mnist"
verify = "structure"
download = false
batch-size = 16
limit-test = 20
limit-train = 48
epochs = {EPOCHS}
[grid]
optimizer = ["sgd", "adam"]
seed = [1, 2]
"""
RUNS = ["sgd-seed1", "sgd-seed2", "adam-seed1", "adam-seed2"]
FAILING = '\n[[runs]]\nname = "no-fc3"\nablate = ["classifier.fc3"]\n'      # zoo.train refuses it at start


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The generated data folder and the spec file."""
    root = tmp_path_factory.mktemp("cluster")
    write_mnist(root / "data" / "mnist")
    (root / "tiny.toml").write_text(SPEC)
    (root / "failing.toml").write_text(SPEC + FAILING)
    return root / "data", root / "tiny.toml"


@pytest.fixture(scope="module")
def serial(files, tmp_path_factory):
    """The study run the serial way (in this process, one run after another): the reference metrics."""
    data_dir, spec = files
    out = tmp_path_factory.mktemp("serial") / "study"
    assert study.main([str(spec), "--out", str(out), "--data-dir", str(data_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def cluster():
    with Cluster.local(2, threads_per_run=1) as cluster:
        yield cluster


def same_metrics(out, reference, runs=RUNS):
    """Every run's metrics.csv equals the reference's, bitwise, but for the timing columns."""
    for name in runs:
        ours, theirs = read_metrics(out / name), read_metrics(reference / name)
        assert len(ours) == EPOCHS, name
        assert [{k: v for k, v in r.items() if k not in TIMING} for r in ours] == \
               [{k: v for k, v in r.items() if k not in TIMING} for r in theirs], name


def record(out):
    return {r["name"]: r for r in json.loads((out / "study.json").read_text())["runs"]}


def invocations(folder):
    return [i["argv"] for i in json.loads((folder / "config.json").read_text())["invocations"]]


def running_child(out, runs=RUNS):
    """(run name, zoo.train pid) of a run between its first checkpoint and its last epoch, else None."""
    for name in runs:
        folder = out / name
        try:
            pid = int((folder / ".lock").read_text())
            done = len(read_metrics(folder))
        except (OSError, ValueError, UnreadableRun):      # not started, or being written
            continue
        if (folder / "checkpoint.npz").exists() and 1 <= done < EPOCHS and psutil.pid_exists(pid):
            return name, pid
    return None


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_two_workers_equal_the_serial_study(files, serial, cluster, tmp_path):
    """The four runs of the serial study plus one that zoo.train refuses: that one is recorded as failed with
    zoo.train's message, the others go on and equal the serial study's, bitwise."""
    data_dir, spec = files
    out = tmp_path / "study"
    assert run_study(load_spec(spec.with_name("failing.toml")), out, data_dir, cluster=cluster) == 1
    same_metrics(out, serial)
    runs = record(out)
    assert runs["no-fc3"]["status"] == "failed"
    assert runs["no-fc3"]["message"] == ("--ablate classifier.fc3: the model's output would change from (10,) to "
                                         "(84,); the loss would silently see other classes")
    assert [runs[n]["status"] for n in RUNS] == ["done"] * 4
    assert {runs[n]["threads"] for n in RUNS} == {1}          # --threads-per-run reached every task
    assert len({runs[n]["worker"] for n in RUNS}) == 2         # both workers trained
    assert "--no-download" in invocations(out / "sgd-seed1")[0]
    assert (out / "report.md").read_text().count("| done |") == 4
    assert not list(out.glob(".zoo-probe-*"))                  # the shared-folder check cleaned up


def test_a_killed_worker_is_replaced_and_its_run_resumes(files, serial, cluster, tmp_path):
    """SIGKILL of the worker process mid-run: its zoo.train dies with it (no orphan holding the run's lock),
    Dask runs the task again, the run resumes from its checkpoint and ends with the uninterrupted metrics."""
    data_dir, spec = files
    out = tmp_path / "study"
    killed, workers = {}, set(cluster.client.run(os.getpid).values())

    def kill_the_worker_of_a_running_child():
        try:
            name, child = running_child(out) or (None, None)
            if child is not None:
                worker = psutil.Process(child).ppid()        # the worker process that started zoo.train
                assert worker in workers, f"zoo.train's parent {worker} is none of the workers {workers}"
                os.kill(worker, signal.SIGKILL)
                killed.update(name=name, child=child, worker=worker)
        except psutil.NoSuchProcess:                         # it ended just now: try the next one
            pass
        return killed

    def kill_a_worker():
        wait_for(kill_the_worker_of_a_running_child, 120, "a run past its first checkpoint")
        wait_for(lambda: not psutil.pid_exists(killed["child"]), 10, "the killed worker's zoo.train to die with it")

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    status = run_study(load_spec(spec), out, data_dir, cluster=cluster)
    killer.join()
    assert killed and status == 0
    same_metrics(out, serial)
    assert [record(out)[n]["status"] for n in RUNS] == ["done"] * 4
    again = invocations(out / killed["name"])
    assert len(again) == 2 and "--resume" in again[1]           # the rescheduled task resumed the run
    first, second = (out / f"{killed['name']}.log").read_text().split("\n== ")[1:]
    assert "done: test accuracy" not in first and "done: test accuracy" in second    # no orphan finished it


def coordinator(args, cwd):
    """``python -m zoo.study ARGS`` as a user runs it (its own process, its own working folder, and its own
    process group, as a terminal gives a command)."""
    return subprocess.Popen([sys.executable, "-m", "zoo.study", *map(str, args)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_on_the_coordinator_saves_the_running_runs(files, serial, cluster, tmp_path, signum, status):
    """Ctrl-C (or SIGTERM, as a batch system stops a job) on a ``--workers 2`` coordinator: the running runs
    save and the study exits 130 (143); run again, it continues to the uninterrupted metrics. The Ctrl-C goes
    to the whole process group, as a terminal sends it: the LocalCluster's worker processes get it too and
    must live on until their runs have saved."""
    data_dir, spec = files
    out, runs = tmp_path / "study", RUNS[:2]
    proc = coordinator([spec, "--out", out, "--data-dir", data_dir, "--workers", 2, "--threads-per-run", 1,
                        "--only", *runs], tmp_path)
    try:
        wait_for(lambda: running_child(out, runs) or proc.poll() is not None, 120, "a run to be under way")
        os.killpg(proc.pid, signum) if signum == signal.SIGINT else proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert "continue with: python -m zoo.study" in err and "--workers 2" in err
    statuses = {n: r["status"] for n, r in record(out).items()}
    assert "interrupted" in statuses.values() and set(statuses.values()) <= {"interrupted", "done", "not run"}
    for name in runs:                      # every lock released: no zoo.train left behind
        assert not (out / name / ".lock").exists(), name
    saved = [n for n in runs if statuses[n] == "interrupted"]
    assert all(" saved " in (out / f"{n}.log").read_text() for n in saved)   # SIGTERM: saved, exit 143

    if signum == signal.SIGINT:            # it continues (checked once: the folders are alike either way)
        assert run_study(load_spec(spec), out, data_dir, runs, cluster=cluster) == 0
        same_metrics(out, serial, runs)
        assert all("--resume" in invocations(out / n)[-1] for n in saved)


# ----------------------------------------------------------------------------- dask scheduler + dask worker

@pytest.fixture(scope="module")
def started_by_hand(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started from the command line: worker
    'near' in folder ``near`` (where the tests' coordinators run too), worker 'far' in folder ``far``."""
    root = tmp_path_factory.mktemp("by-hand")
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    address_file = root / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", address_file], cwd=root, stderr=subprocess.DEVNULL)]
    try:
        wait_for(lambda: address_file.exists() and address_file.stat().st_size, 60, "the scheduler")
        address = json.loads(address_file.read_text())["address"]
        for name in ("near", "far"):
            (root / name).mkdir()
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--name", name,
                                           "--no-dashboard"], cwd=root / name, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, root
    finally:
        for proc in reversed(procs):       # as a user stops them: SIGTERM, which closes them cleanly
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux's /proc/self/cwd")
def test_an_out_one_worker_cannot_reach_is_refused_before_anything_runs(files, started_by_hand):
    """``/proc/self/cwd/study`` is a different folder for every process started elsewhere, like a relative path
    or a disk that is not shared: worker 'far' does not see the coordinator's folder, and the study refuses."""
    data_dir, spec = files
    address, root = started_by_hand
    proc = coordinator([spec, "--scheduler", address, "--out", "/proc/self/cwd/study", "--data-dir", data_dir],
                       root / "near")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.startswith("error: --out /proc/self/cwd/study must be one folder every worker reaches") and \
        err.count("\n") == 1
    assert "1 of 2 worker(s) cannot" in err and "(worker far on" in err and "(worker near" not in err
    assert "submitted" not in out
    assert not (root / "near" / "study").exists() and not (root / "far" / "study").exists()


def test_a_cluster_started_by_hand_runs_the_study(files, serial, started_by_hand):
    data_dir, spec = files
    address, root = started_by_hand
    out, runs = root / "near" / "study", RUNS[:2]
    proc = coordinator([spec, "--scheduler", address, "--out", out, "--data-dir", data_dir, "--threads-per-run",
                        1, "--only", *runs], root / "near")
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"report in {out / 'report.md'}" in printed
    same_metrics(out, serial, runs)
    assert {record(out)[n]["status"] for n in runs} == {"done"}


def test_dask_is_imported_only_for_a_cluster_and_its_absence_says_how_to_install(files, tmp_path, monkeypatch,
                                                                                   capsys):
    check = "import sys, zoo.study, zoo.studies.cluster; assert 'distributed' not in sys.modules, 'imported'"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).returncode == 0
    monkeypatch.setitem(sys.modules, "distributed", None)          # as if it were not installed
    data_dir, spec = files
    assert study.main([str(spec), "--out", str(tmp_path / "s"), "--data-dir", str(data_dir), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'install it with: pip install -e ".[cluster]"' in err
    assert not (tmp_path / "s").exists()
