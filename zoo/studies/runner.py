"""Running a study: each run of a spec is a ``TrainConfig`` given to ``zoo.run.train``, one after another,
or a ``python -m zoo.train`` process on the workers of a Dask cluster (zoo/studies/cluster.py).

    spec = load_spec("zoo/studies/optimizers.toml")
    status = run_study(spec, Path("runs/opt"), data_dir="../shared/data", only=["lenet5-adam"])
    with Cluster.local(workers=2, threads_per_run=1) as cluster:       # or Cluster.connect("tcp://host:8786")
        status = run_study(spec, Path("runs/opt"), data_dir="/shared/data", cluster=cluster)

The run folders (``out/<name>``) are ordinary ``zoo.train`` folders. The study is resumable: a run whose
folder already holds all its epochs is skipped, one with a checkpoint resumes, a failed run is recorded
in ``study.json`` and the others go on, and Ctrl-C stops the current run exactly as it stops ``zoo.train``
(a checkpoint at the next batch boundary) and then the study (exit 130). After every run the study
rewrites ``report.md``, ``results.csv``, ``curves.png`` and ``error_vs_time.png`` in ``out`` (StudyRecord: on
a cluster too, only this process writes them, as the results come back).
"""
import sys
import traceback
from datetime import datetime

from zoo.cli import BAD_INPUT
from zoo.run import UsageError, train
from zoo.run.checkpoint import FILENAME
from zoo.run.report import write_json
from zoo.run.trainer import EXIT_STATUS

from .report import STUDY_JSON, UnreadableRun, read_metrics, read_record, write_report
from .spec import train_config

EXIT_FAILED = 1


def run_state(run, folder):
    """'done', 'resume' or 'new', for a run whose folder is ``folder``. A folder made with other options is a
    UsageError from TrainConfig's own resume check."""
    if not (folder / FILENAME).exists():
        return "new"
    if not (folder / "config.json").exists():    # a checkpoint alone: the resume will judge it
        return "resume"
    wanted = train_config(run, folder, resume=True).epochs
    try:
        done = len(read_metrics(folder))
    except UnreadableRun:           # the resume rewrites metrics.csv from the checkpoint's history
        return "resume"
    return "done" if done >= wanted else "resume"


def train_one(run, folder, data_dir):
    """Train one run; returns (status, message) with status skipped (complete before) / done / interrupted /
    failed."""
    try:
        state = run_state(run, folder)
        if state == "done":
            print(f"study: {run['name']}: already complete, skipped", flush=True)
            return "skipped", ""
        argv = run["argv"] + ["--out", str(folder)] + (["--resume"] if state == "resume" else []) \
            + (["--data-dir", str(data_dir)] if data_dir else [])
        print(f"study: {run['name']}: python -m zoo.train {' '.join(argv)}", flush=True)
        result = train(train_config(run, folder, state == "resume", data_dir), invocation=argv)
    except BAD_INPUT as err:            # what zoo.train reports as one line and exit 1
        print(f"error: {err}", file=sys.stderr)
        return "failed", str(err)
    except KeyboardInterrupt:           # before training started (loading the data)
        return "interrupted", "interrupted (Ctrl-C); run the study again to resume"
    except Exception as err:            # a bug or a numerical failure: record it and go on with the others
        traceback.print_exc()
        return "failed", f"{type(err).__name__}: {err}"
    if result.status in ("done", "complete"):
        return "done", ""
    if result.status in ("interrupted", "terminated"):    # Ctrl-C or SIGTERM: the study stops too
        return result.status, f"{result.status}; run the study again to resume"
    return "failed", result.message


def open_study(out, spec):
    """The study's record in ``out``: the one there (same spec name and protocol) or a new one."""
    try:
        old = read_record(out)
    except UnreadableRun as err:
        raise UsageError(str(err)) from None
    record = {"name": spec["name"], "description": spec["description"], "spec": spec["spec"],
              "protocol": spec["protocol"], "defaults": spec["defaults"], "overrides": spec["overrides"],
              "runs": []}
    if old:
        if (old.get("name"), old.get("protocol")) != (spec["name"], spec["protocol"]):
            raise UsageError(f"{out} holds the study {old['name']!r} with the {old['protocol']} protocol, not "
                             f"{spec['name']!r} with {spec['protocol']}; choose another --out")
        record["runs"] = [r for r in old.get("runs", []) if isinstance(r, dict) and "name" in r]
    known = {r["name"]: r for r in record["runs"]}
    for run in spec["runs"]:   # the spec's order; entries of runs no longer in the spec are kept after them
        entry = known.get(run["name"], {"name": run["name"], "status": "not run", "message": ""})
        entry.update(options=run["options"], argv=run["argv"])
        known[run["name"]] = entry
    order = [r["name"] for r in spec["runs"]]
    record["runs"] = [known[n] for n in order] + [r for n, r in known.items() if n not in order]
    return record


class StudyRecord:
    """study.json in ``out`` and the report, rewritten as each run's outcome comes in (only the coordinating
    process writes them, wherever the runs execute)."""

    def __init__(self, out, spec):
        self.out, self.record = out, open_study(out, spec)
        self.entries = {r["name"]: r for r in self.record["runs"]}

    def note(self, name, result, message="", wall_s=None, **details):
        """Record one run's outcome (skipped / done / interrupted / terminated / failed) and rewrite the files;
        returns EXIT_FAILED for a failed run, else 0."""
        if result == "skipped":
            if self.entries[name].get("status") == "done":
                return 0                 # keep when it finished and how long it took; the report is current
            result = "done"              # complete, but finished before this study record knew of it
        self.entries[name].update(status=result, message=message, finished=f"{datetime.now():%Y-%m-%d %H:%M:%S}",
                                  wall_s=wall_s, **details)
        self.save()
        if result == "failed":
            print(f"study: {name} failed: {message}; going on with the others", file=sys.stderr)
            return EXIT_FAILED
        return 0

    def save(self):
        write_json(self.out / STUDY_JSON, self.record)
        write_report(self.out)


def selected_runs(spec, only):
    names = [r["name"] for r in spec["runs"]]
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        raise UsageError(f"--only: no run named {unknown[0]!r}; this study's runs: {', '.join(names)}")
    return [run for run in spec["runs"] if not only or run["name"] in only]


def run_here(runs, out, data_dir, study):
    """The runs one after another in this process; returns 0, EXIT_FAILED, or 130/143 when stopped."""
    status = 0
    for run in runs:
        started = datetime.now()
        result, message = train_one(run, out / run["name"], data_dir)
        wall_s = round((datetime.now() - started).total_seconds(), 1)
        status = max(status, study.note(run["name"], result, message, wall_s))
        if result in ("interrupted", "terminated"):
            return EXIT_STATUS[result]
    return status


def run_study(spec, out, data_dir=None, only=None, cluster=None):
    """Run the spec's runs (or ``only`` those) into ``out``, here one after another or, given a ``cluster``
    (zoo/studies/cluster.py), as zoo.train processes on its workers; returns the exit status (0, 1: a run
    failed, 130: interrupted, 143: terminated)."""
    runs = selected_runs(spec, only)
    if cluster is not None:
        cluster.check_folders(out, data_dir)      # every worker sees --out, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    study = StudyRecord(out, spec)
    status = run_here(runs, out, data_dir, study) if cluster is None else cluster.run(runs, out, data_dir, study)
    if status in (EXIT_STATUS["interrupted"], EXIT_STATUS["terminated"]):
        again = f" {cluster.flags}" if cluster is not None else ""
        print(f"study stopped; continue with: python -m zoo.study {spec['spec']} --out {out} "
              f"--protocol {spec['protocol']}{again}", file=sys.stderr)
        return status
    study.save()
    print(f"study {spec['name']}: report in {out / 'report.md'}")
    return status
