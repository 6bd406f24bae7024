"""Studies: a grid of training runs and their report, ``python -m zoo.study SPEC.toml``.

    python -m zoo.study zoo/studies/optimizers.toml                   # the CPU protocol, into runs/study-...
    python -m zoo.study zoo/studies/optimizers.toml --protocol full --out runs/opt --only sgd adam
    python -m zoo.study zoo/studies/optimizers.toml --dry-run         # print the zoo.train commands only
    python -m zoo.study --report runs/opt                             # rebuild report.md from the folders

A spec is TOML (the standard library's ``tomllib``)::

    name = "optimizers"          # optional: defaults to the file's stem
    description = "..."          # optional: a paragraph for the report
    [defaults]                   # any zoo.train option by its long name (- or _), for every run
    model = "lenet5"
    dataset = "mnist"
    [protocol.cpu]               # applied with --protocol cpu (the default)
    epochs = 3
    [protocol.full]              # applied with --protocol full
    epochs = 30
    [[runs]]                     # one table per run; ``name`` is its folder under --out
    name = "adam"
    optimizer = "adam"
    protocol.cpu = { epochs = 2 }   # optional: this run's own protocol overrides
    [grid]                       # optional: every combination of these lists is a run too,
    model = ["lenet5", "resnet18"]  # named from its values ("resnet18-cifar10")
    dataset = ["mnist", "cifar10"]

A run's options are, from weakest to strongest: ``[defaults]``, the protocol's table, the run's own
values (or its grid values), the run's own protocol table. A flag that switches something off is written
as its positive name set to false (``augment = false`` is ``--no-augment``); ``ablate`` takes a list.

Each run is ``zoo.train``'s ``main`` called in-process with that command line and ``--out DIR/<name>``,
one after another; so the run folders are ordinary ``zoo.train`` folders. The study is resumable: a run
whose folder already holds all its epochs is skipped, one with a checkpoint resumes (``--resume``), a
failed run is recorded in ``study.json`` and the others go on, and Ctrl-C stops the current run exactly
as it stops ``zoo.train`` (a checkpoint at the next batch boundary) and then the study (exit 130).
After every run the study rewrites ``report.md``, ``results.csv``, ``curves.png`` and
``error_vs_time.png`` in DIR (see ``zoo/study_report.py``).
"""
import argparse
import contextlib
import itertools
import json
import sys
import traceback
from datetime import datetime
from pathlib import Path

try:
    import tomllib
except ImportError:          # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from . import train
from .checkpoint import FILENAME
from .cli import OneLineParser, UsageError
from .report import write_json
from .study_report import STUDY_JSON, read_metrics, write_report

PROTOCOLS = ("cpu", "full")
TOP_LEVEL = ("name", "description", "defaults", "protocol", "runs", "grid")
NOT_IN_SPECS = ("out", "resume", "help", "data_dir")   # the study decides these
SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


class SpecError(UsageError):
    """A spec that cannot be run, in one line naming the file and the place."""


# ----------------------------------------------------------------------------- reading a spec

def train_options():
    """zoo.train's options by destination name: the argparse action of each."""
    return {a.dest: a for a in train.build_parser()._actions if a.dest not in NOT_IN_SPECS}


def normalise(table, where, options):
    """A TOML table of zoo.train options with '-' or '_' in the names -> {dest: value}; unknown names fail."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of zoo.train options, got {table!r}")
    out = {}
    for key, value in table.items():
        dest = key.replace("-", "_")
        if dest not in options:
            raise SpecError(f"{where}: unknown option {key!r}; zoo.train options: "
                            + ", ".join(sorted(d.replace("_", "-") for d in options)))
        out[dest] = value
    return out


def to_argv(options, actions, where):
    """{dest: value} -> zoo.train's command line (positional model and dataset first)."""
    missing = [k for k in ("model", "dataset") if k not in options]
    if missing:
        raise SpecError(f"{where}: no {' and no '.join(missing)} (set it in [defaults], the run or the grid)")
    argv = [str(options["model"]), str(options["dataset"])]
    for dest, value in options.items():
        action = actions[dest]
        if dest in ("model", "dataset"):
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse._StoreFalseAction):          # e.g. augment = false -> --no-augment
            if not isinstance(value, bool):
                raise SpecError(f"{where}: {dest} takes true or false, got {value!r}")
            argv += [] if value else [flag]
        elif isinstance(action, argparse._StoreTrueAction):         # e.g. nesterov = true -> --nesterov
            if not isinstance(value, bool):
                raise SpecError(f"{where}: {dest} takes true or false, got {value!r}")
            argv += [flag] if value else []
        elif isinstance(value, bool):
            raise SpecError(f"{where}: {dest} takes a value, not {value!r}")
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def protocol_table(table, protocol, where, options):
    protocols = table.get("protocol", {})
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise SpecError(f"{where}: unknown protocol {unknown[0]!r}; the protocols are {', '.join(PROTOCOLS)}")
    return normalise(protocols.get(protocol, {}), f"{where} [protocol.{protocol}]", options)


def value_name(dest, value):
    """How a grid value shows in a run name: strings bare, flags as name/no-name, numbers after the name."""
    key = dest.replace("_", "-")
    if isinstance(value, bool):
        return key if value else f"no-{key}"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return str(value) if isinstance(value, str) else f"{key}{value}"


def grid_runs(grid, where, options):
    grid = normalise(grid, where, options)
    for dest, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: {dest} must be a non-empty list of values, got {values!r}")
    for combination in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combination))
        yield "-".join(value_name(k, v) for k, v in chosen.items()), chosen, {}


def load_spec(path, protocol="cpu"):
    """Read a spec: {name, description, protocol, overrides, runs: [{name, options, argv}]} with every run's
    command line resolved and checked by zoo.train's own parser."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as err:
        raise SpecError(f"cannot read the spec {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path} is not valid TOML: {err}") from None
    unknown = [k for k in spec if k not in TOP_LEVEL]
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r}; a spec has {', '.join(TOP_LEVEL)}")
    actions = train_options()
    defaults = normalise(spec.get("defaults", {}), f"{path} [defaults]", actions)
    overrides = protocol_table(spec, protocol, str(path), actions)
    entries = []
    for i, run in enumerate(spec.get("runs", [])):
        where = f"{path} [[runs]] #{i + 1}"
        run = dict(run)
        if not isinstance(run.get("name"), str):
            raise SpecError(f"{where}: every run needs a name (its folder), e.g. name = \"baseline\"")
        name, own = run.pop("name"), protocol_table(run, protocol, where, actions)
        run.pop("protocol", None)
        entries.append((name, normalise(run, where, actions), own))
    entries += list(grid_runs(spec.get("grid", {}), f"{path} [grid]", actions)) if "grid" in spec else []
    if not entries:
        raise SpecError(f"{path}: no runs; add [[runs]] tables or a [grid]")
    runs, seen = [], set()
    for name, options, own in entries:
        if not name or not set(name) <= SAFE_CHARS or name.startswith("."):
            raise SpecError(f"{path}: run name {name!r} is not a plain folder name (letters, digits, . _ + -)")
        if name in seen:
            raise SpecError(f"{path}: two runs are named {name!r}")
        seen.add(name)
        merged = {**defaults, **overrides, **options, **own}
        argv = to_argv(merged, actions, f"{path} run {name!r}")
        check_argv(argv, f"{path} run {name!r}")
        runs.append({"name": name, "options": {**options, **own}, "argv": argv})
    return {"name": spec.get("name", path.stem), "description": spec.get("description", ""),
            "spec": str(path), "protocol": protocol, "defaults": defaults, "overrides": overrides, "runs": runs}


def check_argv(argv, where):
    """Parse with zoo.train's parser and names, so a bad value fails now, not hours into the study."""
    message = _Capture()
    try:
        with contextlib.redirect_stderr(message):
            args = train.build_parser().parse_args(argv)
        train.check_names(args.model, args.dataset)
    except SystemExit:
        raise SpecError(f"{where}: {message.last_error() or 'bad options'}") from None
    except UsageError as err:
        raise SpecError(f"{where}: {err}") from None
    return args


# ----------------------------------------------------------------------------- running it

class _Capture:
    """A stderr that passes everything on (if ``echo``) and keeps the last line that reports an error."""

    def __init__(self, echo=None):
        self.echo, self.lines = echo, []

    def write(self, text):
        if self.echo is not None:
            self.echo.write(text)
        self.lines += [line.strip() for line in text.splitlines() if "error" in line]
        return len(text)

    def flush(self):
        if self.echo is not None:
            self.echo.flush()

    def last_error(self):
        return self.lines[-1].split("error: ", 1)[-1] if self.lines else ""


def run_state(run, folder):
    """'done', 'resume' or 'new', for a run whose folder is ``folder``. A folder made with other options is a
    UsageError from zoo.train's own resume check."""
    if not (folder / FILENAME).exists():
        return "new"
    if not (folder / "config.json").exists():    # a checkpoint alone: zoo.train's resume will judge it
        return "resume"
    config = json.loads((folder / "config.json").read_text())
    args = train.build_parser().parse_args(run["argv"] + ["--out", str(folder), "--resume"])
    meta = {"model": config["model"], "dataset": config["dataset"], "config": config}
    wanted = train.resumed_config(args, meta, config["model"], config["dataset"])["epochs"]
    return "done" if len(read_metrics(folder)) >= wanted else "resume"


def train_one(run, folder, data_dir):
    """Run zoo.train in-process; returns (status, message) with status skipped (complete before) / done /
    interrupted / failed."""
    state = run_state(run, folder)
    if state == "done":
        print(f"study: {run['name']}: already complete, skipped", flush=True)
        return "skipped", ""
    argv = run["argv"] + ["--out", str(folder)] + (["--resume"] if state == "resume" else []) \
        + (["--data-dir", str(data_dir)] if data_dir else [])
    print(f"study: {run['name']}: python -m zoo.train {' '.join(argv)}", flush=True)
    errors = _Capture(echo=sys.stderr)
    try:
        with contextlib.redirect_stderr(errors):
            status = train.main(argv)
    except SystemExit as exit_:          # argparse
        status = exit_.code
    except Exception as err:            # a bug or a numerical failure: record it and go on with the others
        traceback.print_exc()
        return "failed", f"{type(err).__name__}: {err}"
    if status == 0:
        return "done", ""
    if status == train.EXIT_INTERRUPTED:
        return "interrupted", "interrupted (Ctrl-C); run the study again to resume"
    return "failed", errors.last_error() or f"zoo.train exited with status {status}"


def open_study(out, spec):
    """The study's record in ``out``: the one there (same spec name and protocol) or a new one."""
    path = out / STUDY_JSON
    record = {"name": spec["name"], "description": spec["description"], "spec": spec["spec"],
              "protocol": spec["protocol"], "defaults": spec["defaults"], "overrides": spec["overrides"],
              "runs": []}
    if path.exists():
        old = json.loads(path.read_text())
        if (old["name"], old["protocol"]) != (spec["name"], spec["protocol"]):
            raise UsageError(f"{out} holds the study {old['name']!r} with the {old['protocol']} protocol, not "
                             f"{spec['name']!r} with {spec['protocol']}; choose another --out")
        record["runs"] = old["runs"]
    known = {r["name"]: r for r in record["runs"]}
    for run in spec["runs"]:   # the spec's order; entries of runs no longer in the spec are kept after them
        entry = known.get(run["name"], {"name": run["name"], "status": "not run", "message": ""})
        entry.update(options=run["options"], argv=run["argv"])
        known[run["name"]] = entry
    order = [r["name"] for r in spec["runs"]]
    record["runs"] = [known[n] for n in order] + [r for n, r in known.items() if n not in order]
    return record


def run_study(spec, out, data_dir=None, only=None):
    """Run the spec's runs (or ``only`` those) into ``out``; returns the exit status."""
    names = [r["name"] for r in spec["runs"]]
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        raise UsageError(f"--only: no run named {unknown[0]!r}; this study's runs: {', '.join(names)}")
    out.mkdir(parents=True, exist_ok=True)
    record = open_study(out, spec)
    entries = {r["name"]: r for r in record["runs"]}
    status = 0
    for run in spec["runs"]:
        if only and run["name"] not in only:
            continue
        started = datetime.now()
        try:
            result, message = train_one(run, out / run["name"], data_dir)
        except UsageError as err:        # e.g. the folder was made with other options
            result, message = "failed", str(err)
        if result == "skipped":
            if entries[run["name"]].get("status") == "done":
                continue                 # keep when it finished and how long it took; the report is current
            result = "done"              # complete, but finished before this study record knew of it
        entries[run["name"]].update(status=result, message=message, finished=f"{datetime.now():%Y-%m-%d %H:%M:%S}",
                                    wall_s=round((datetime.now() - started).total_seconds(), 1))
        write_json(out / STUDY_JSON, record)
        write_report(out)
        if result == "interrupted":
            print(f"study interrupted; continue with: python -m zoo.study {spec['spec']} --out {out} "
                  f"--protocol {spec['protocol']}", file=sys.stderr)
            return train.EXIT_INTERRUPTED
        if result == "failed":
            print(f"study: {run['name']} failed: {message}; going on with the others", file=sys.stderr)
            status = 1
    write_json(out / STUDY_JSON, record)
    write_report(out)
    print(f"study {spec['name']}: report in {out / 'report.md'}")
    return status


def build_parser():
    p = OneLineParser(prog="python -m zoo.study", description="Run a study (a grid of zoo.train runs) and "
                      "write its report, or rebuild the report of a study folder with --report.")
    p.add_argument("spec", nargs="?", metavar="SPEC.toml", help="the study to run (see zoo/studies/)")
    p.add_argument("--out", help="the study folder (default: runs/study-<name>-<protocol>)")
    p.add_argument("--data-dir", help="where the datasets are, for every run")
    p.add_argument("--protocol", choices=PROTOCOLS, default="cpu", help="which [protocol.X] overrides apply")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these runs")
    p.add_argument("--dry-run", action="store_true", help="print each run's zoo.train command and stop")
    p.add_argument("--report", metavar="DIR", help="rebuild DIR's report from its run folders and stop")
    return p


def main(argv=None):
    """The command line. Exit status: 0, 1 (bad spec, or a run failed), 2 (bad option), 130 (Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.spec is None) == (args.report is None):
        parser.error("give either SPEC.toml or --report DIR")
    try:
        if args.report:
            if not Path(args.report).is_dir():
                raise UsageError(f"--report: {args.report} is not a folder")
            print(f"wrote {write_report(Path(args.report))}")
            return 0
        spec = load_spec(args.spec, args.protocol)
        out = Path(args.out or Path("runs") / f"study-{spec['name']}-{args.protocol}")
        if args.dry_run:
            data = f" --data-dir {args.data_dir}" if args.data_dir else ""
            for run in spec["runs"]:
                print(f"python -m zoo.train {' '.join(run['argv'])} --out {out / run['name']}{data}")
            return 0
        return run_study(spec, out, args.data_dir, args.only)
    except (UsageError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return train.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
