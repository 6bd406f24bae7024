"""A study on a Dask cluster: every run is a ``python -m zoo.train`` process on one of the cluster's workers.

    with Cluster.local(workers=2, threads_per_run=1) as cluster:      # python -m zoo.study SPEC --workers 2
        status = run_study(spec, out, data_dir, cluster=cluster)      # zoo/studies/runner.py
    with Cluster.connect("tcp://10.0.0.5:8786") as cluster:           # ... --scheduler tcp://10.0.0.5:8786
        ...

Dask distributed (``pip install -e ".[cluster]"``) is the engine: the coordinating ``zoo.study`` submits one
task per run and records the outcomes as they come back (``as_completed``); only it writes ``study.json`` and
the report. A task (``train_on_worker``, run by a worker) starts ``python -m zoo.train`` with the run's
options, ``--out <out>/<name>`` (``--resume`` when the folder holds a checkpoint), ``--data-dir`` and
``--no-download``, with its BLAS and Numba threads set (``--threads-per-run``; default: the worker's cores).
Its output goes to ``<out>/<name>.log``. So ``--out`` must be one folder that every worker reaches at the same
path (a shared file system): ``check_folders`` proves it before anything runs, each worker reading a file the
coordinator wrote there and writing one the coordinator reads back.

Faults:

- a worker that dies (killed, machine lost) takes its zoo.train process with it (``die_with_parent``: the
  kernel kills the child when the worker goes), and Dask runs the task again elsewhere; the run resumes from
  its last checkpoint, bitwise on the CPU, so its metrics equal an uninterrupted run's;
- a zoo.train process killed by a signal on a live worker (the OOM killer, an administrator) raises
  ``RunStopped``: Dask retries the task (``RETRIES`` times), which resumes the run;
- a run that fails by itself (bad options, divergence) is recorded as failed and the others go on;
- Ctrl-C on the coordinator sets a Dask ``Event`` the tasks poll: tasks not started yet return at once,
  running ones send their zoo.train SIGTERM (it saves at the next batch boundary and exits 143); the study
  records them as interrupted and exits 130 (143 for a SIGTERM on the coordinator, stopped the same way).
  The worker processes of ``--workers`` ignore a terminal's Ctrl-C, which reaches them too, so that they
  live until their runs have saved. Running the study again continues every run.
"""
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from zoo.cli import BAD_INPUT
from zoo.run import UsageError
from zoo.run.lock import holder

from .runner import run_state

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
RETRIES = 2              # a zoo.train process killed on a live worker is tried again this many times
POLL_S = 0.5             # how often a task looks at the stop event while its zoo.train runs
STOP_WAIT_S = 120        # after Ctrl-C, how long the coordinator waits for the running runs to save
LOCK_WAIT_S = 30         # how long a task waits for the run's previous zoo.train (killed with its worker) to go
WORKER_WAIT_S = 60       # how long --scheduler waits for a first worker
CONNECT_S = 10           # and for the scheduler to answer
PROBE = ".zoo-probe-"
INSTALL = 'pip install -e ".[cluster]"'


def import_distributed():
    """The ``distributed`` package, or a UsageError saying how to install it (it is an optional extra)."""
    try:
        import distributed
    except ImportError as err:
        raise UsageError(f"--workers and --scheduler run the study on Dask, which is not installed ({err}); "
                         f"install it with: {INSTALL}") from None
    return distributed


class RunStopped(RuntimeError):
    """A zoo.train process ended by a signal the study did not send: Dask runs the task again (resuming)."""


class Cluster:
    """A Dask client (and the LocalCluster it owns, for --workers) with the study's per-run settings."""

    def __init__(self, client, local=None, threads_per_run=None, flags=""):
        self.client, self.local, self.threads_per_run = client, local, threads_per_run
        self.flags = flags + (f" --threads-per-run {threads_per_run}" if threads_per_run else "")

    @classmethod
    def local(cls, workers, threads_per_run=None):
        """A LocalCluster of ``workers`` single-threaded worker processes on this machine."""
        distributed = import_distributed()
        try:
            local = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR)
        except (OSError, RuntimeError) as err:      # e.g. no free port, a worker process that would not start
            raise UsageError(f"--workers {workers}: could not start a Dask LocalCluster ({err})") from None
        client = distributed.Client(local)
        client.register_plugin(ctrl_c_plugin(distributed))
        return cls(client, local, threads_per_run, f"--workers {workers}")

    @classmethod
    def connect(cls, address, threads_per_run=None):
        """The cluster whose scheduler is at ``address`` (tcp://HOST:PORT), once it has a worker."""
        distributed = import_distributed()
        try:
            client = distributed.Client(address, timeout=CONNECT_S)
        except (OSError, TimeoutError) as err:
            raise UsageError(f"--scheduler: cannot reach a Dask scheduler at {address} ({err})") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            client.close()
            raise UsageError(f"--scheduler {address}: no worker joined in {WORKER_WAIT_S} s; start some with: "
                             f"dask worker {address} --nthreads 1") from None
        return cls(client, None, threads_per_run, f"--scheduler {address}")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.client.close()
        if self.local is not None:
            self.local.close()

    def worker_names(self):
        """{address: 'address (name on host)'} of the workers now connected."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {a: f"{a} (worker {w.get('name', '?')} on {w.get('host', '?')})" for a, w in workers.items()}

    def check_folders(self, out, data_dir):
        """Refuse (UsageError) unless every worker reads and writes the coordinator's folder ``out`` and sees
        ``data_dir``; leaves nothing behind when it refuses."""
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        mine = out / f"{PROBE}{token}"
        mine.write_text(token)
        try:
            answers = self.client.run(probe_folders, str(out), token, data_dir, on_error="return")
            problems = {a: problem_of(answer, out, token) for a, answer in answers.items()}
        finally:
            for path in out.glob(f"{PROBE}{token}*"):
                path.unlink(missing_ok=True)
        names = self.worker_names()
        bad = [f"{names.get(a, a)}: {p}" for a, p in sorted(problems.items()) if p]
        if bad:
            if created:
                out.rmdir()
            raise UsageError(f"--out {out} must be one folder every worker reaches at that path (a shared file "
                             f"system), and --data-dir a folder each can read; {len(bad)} of {len(problems)} "
                             f"worker(s) cannot: " + "; ".join(bad))

    def run(self, runs, out, data_dir, study):
        """Submit the runs, record each outcome in ``study`` as it comes; returns 0, 1 (a run failed), or 130
        (Ctrl-C) / 143 (SIGTERM, e.g. a batch system ending the coordinator's job) after ``stop``."""
        distributed = import_distributed()
        stop = distributed.Event(f"zoo-study-stop-{uuid.uuid4().hex}", client=self.client)
        futures, recorded, status = {}, set(), 0
        try:
            with sigterm_as_ctrl_c():
                for run in runs:
                    name = run["name"]
                    print(f"study: {name}: submitted: python -m zoo.train "
                          f"{' '.join(train_argv(run, out / name, data_dir))}", flush=True)
                    futures[self.client.submit(train_on_worker, run, str(out / name), data_dir, self.threads_per_run,
                                               stop.name, key=f"zoo.train-{name}-{uuid.uuid4().hex[:8]}",
                                               pure=False, retries=RETRIES)] = name
                for future in distributed.as_completed(futures):
                    status = max(status, note(study, futures[future], outcome(future)))
                    recorded.add(future)         # after note: a Ctrl-C inside it leaves the run to stop()
        except KeyboardInterrupt as err:
            return self.stop(futures, recorded, stop, study, 143 if isinstance(err, Terminated) else 130)
        return status

    def stop(self, futures, recorded, stop, study, status):
        """Ctrl-C: pending runs are dropped, running ones save (SIGTERM) and are recorded; returns ``status``."""
        distributed = import_distributed()
        print(f"study: stopping: the running runs save their checkpoints (up to {STOP_WAIT_S} s; Ctrl-C again to "
              "leave them)", file=sys.stderr, flush=True)
        stop.set()
        left = [f for f in futures if f not in recorded]
        try:
            for future in distributed.as_completed(left, timeout=STOP_WAIT_S):
                result = outcome(future)
                if result["status"] != "not started":
                    if result["status"] == "terminated":
                        result.update(status="interrupted", message="interrupted (the study was stopped); run "
                                                                    "the study again to resume")
                    note(study, futures[future], result)
        except (KeyboardInterrupt, TimeoutError):
            pass
        self.client.cancel(left)
        return status


class Terminated(KeyboardInterrupt):
    """SIGTERM on the coordinator: stopped as by Ctrl-C, exit 143."""


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """SIGTERM raises Terminated in the coordinator, so it stops its runs the way Ctrl-C does."""
    def terminated(signum, frame):
        raise Terminated()
    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:                   # not the main thread (e.g. a test's): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def ctrl_c_plugin(distributed):
    """A worker plugin: the worker processes of ``--workers`` ignore Ctrl-C. A terminal's Ctrl-C reaches every
    process of its group, these too; they must live on until their runs have saved, which the coordinator
    asks for (stop). Registered on the cluster, it also holds for a worker the nanny restarts."""
    class LeaveCtrlCToTheStudy(distributed.WorkerPlugin):
        name = "zoo-study-leave-ctrl-c-to-the-study"

        def setup(self, worker):
            if threading.current_thread() is threading.main_thread():   # a signal handler is the main thread's
                signal.signal(signal.SIGINT, signal.SIG_IGN)
    return LeaveCtrlCToTheStudy()


def note(study, name, result):
    """Print and record one run's outcome (a dict from train_on_worker or outcome()); returns 0 or 1."""
    result = dict(result)
    status, message, wall_s = result.pop("status"), result.pop("message"), result.pop("wall_s", None)
    if status == "skipped":
        print(f"study: {name}: already complete, skipped", flush=True)
    else:
        where = f" on {result['host']}" if "host" in result else ""
        print(f"study: {name}: {status}{where}" + (f" ({wall_s} s)" if wall_s is not None else ""), flush=True)
    return study.note(name, status, message, wall_s, **result)


def outcome(future):
    """What a finished task returned, or its exception as a failed run (e.g. KilledWorker: the run's workers
    kept dying; a worker that cannot import zoo)."""
    try:
        return future.result()
    except Exception as err:
        return {"status": "failed", "message": f"{type(err).__name__}: {err}"}


def problem_of(answer, out, token):
    """Why a worker's probe answer shows it does not share ``out`` (None if it does)."""
    if isinstance(answer, BaseException):
        return f"{type(answer).__name__}: {answer}"
    if answer["problem"]:
        return answer["problem"]
    path = out / answer["file"]
    try:
        seen = path.read_text()
    except OSError as err:
        return f"wrote {answer['file']} into a folder the coordinator does not see ({err.strerror})"
    return None if seen == answer["wrote"] else f"its {answer['file']} reads back differently here"


# ----------------------------------------------------------------------------- on the workers

def probe_folders(out, token, data_dir):
    """On a worker: read the coordinator's probe file in ``out``, write one of our own and read it back; check
    ``data_dir`` is a folder. Returns {problem: None or why not, file, wrote}."""
    out = Path(out)
    theirs, name = out / f"{PROBE}{token}", f"{PROBE}{token}-{uuid.uuid4().hex}"
    wrote = f"{socket.gethostname()} {os.getpid()}"
    answer = {"problem": None, "file": name, "wrote": wrote}
    try:
        if theirs.read_text() != token:
            answer["problem"] = f"{theirs} holds something else here"
            return answer
        (out / name).write_text(wrote)
        if (out / name).read_text() != wrote:
            answer["problem"] = f"{out / name} reads back differently"
    except OSError as err:
        answer["problem"] = f"cannot read and write {out} here ({err.strerror}: {err.filename})"
        return answer
    if data_dir is not None and not Path(data_dir).is_dir():
        answer["problem"] = f"--data-dir {data_dir} is not a folder here"
    return answer


def train_argv(run, folder, data_dir, resume=False):
    """zoo.train's arguments for ``run`` in ``folder``: never downloading, reading ``data_dir``."""
    argv = list(run["argv"]) + ["--out", str(folder)] + (["--resume"] if resume else [])
    argv += [] if "--no-download" in argv else ["--no-download"]
    return argv + (["--data-dir", str(data_dir)] if data_dir else [])


def worker_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not Linux
        return os.cpu_count() or 1


def die_with_parent():
    """In the zoo.train child, before it starts: the kernel SIGKILLs it when the worker that started it dies,
    so a killed worker leaves no orphan training on (and holding the run folder's lock) while Dask resumes
    the run elsewhere. Linux only (prctl PR_SET_PDEATHSIG); elsewhere an orphan finishes its run."""
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)          # 1: PR_SET_PDEATHSIG


try:                                   # looked up before any fork: the child only calls it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def train_on_worker(run, folder, data_dir, threads, stop_name):
    """A task: train ``run`` into ``folder`` with a zoo.train process; returns {status, message, wall_s,
    host, threads}. Safe to run again after a worker died: it resumes from the folder's checkpoint."""
    distributed = import_distributed()
    stop, folder, started = distributed.Event(stop_name), Path(folder), time.monotonic()
    if stop.is_set():
        return {"status": "not started", "message": ""}
    try:
        state = run_state(run, folder)
    except BAD_INPUT as err:              # e.g. the folder holds a run made with other options
        return {"status": "failed", "message": str(err)}
    if state == "done":
        return {"status": "skipped", "message": ""}
    wait_for_the_lock(folder, LOCK_WAIT_S)
    threads = threads or worker_cores()
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    command = [sys.executable, "-m", "zoo.train"] + train_argv(run, folder, data_dir, state == "resume")
    log = folder.parent / f"{run['name']}.log"
    with open(log, "ab") as output:
        output.write(f"\n== {socket.gethostname()} {time.ctime()}: {' '.join(command[1:])}\n".encode())
        output.flush()
        code = wait_or_stop(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True, preexec_fn=die_with_parent), stop)
    result = {"wall_s": round(time.monotonic() - started, 1), "host": socket.gethostname(),
              "worker": distributed.get_worker().address, "threads": threads}
    if code == 0:
        return {**result, "status": "done", "message": ""}
    if stop.is_set() and code in (130, 143, -signal.SIGTERM):    # saved (or stopped before it began)
        return {**result, "status": "terminated", "message": last_words(log)}
    if code < 0 or code in (130, 143):   # a signal the study did not send: Dask tries again (retries)
        raise RunStopped(f"python -m zoo.train ended by a signal ({code}); see {log}")
    return {**result, "status": "failed", "message": last_words(log)}


def wait_for_the_lock(folder, timeout):
    """A task retried after its worker died can start before the killed worker's zoo.train is gone (the kernel
    kills it as the worker dies, a moment later): wait up to ``timeout`` s for the run folder's lock to be
    released. A lock still held after that is a real second run, and zoo.train refuses it with its message."""
    deadline = time.monotonic() + timeout
    while holder(folder) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_or_stop(process, stop):
    """Wait for ``process``; once the study's ``stop`` event is set, send it SIGTERM (it saves and exits 143)."""
    sent = False
    while True:
        try:
            return process.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if not sent and stop.is_set():
                process.send_signal(signal.SIGTERM)
                sent = True
        except BaseException:            # the task itself is going away: do not leave the run behind
            process.kill()
            raise


def last_words(log):
    """The message of a failed zoo.train in ``log``: from its last ``error: ...`` line to the end (a message
    may go on over several lines: the folders looked in, the URLs tried), else the log's last line."""
    with open(log, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4000))
        lines = [line.rstrip() for line in f.read().decode(errors="replace").replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if not starts:
        return lines[-1].strip() if lines else "no output"
    return "\n".join([lines[starts[-1]][len("error: "):], *lines[starts[-1] + 1:]])
