"""Reading a study spec (TOML): every run's options resolved and checked before anything trains.

    spec = load_spec("zoo/studies/optimizers.toml", protocol="cpu")
    for run in spec["runs"]:
        config = train_config(run, out=Path("runs/opt") / run["name"])    # a zoo.run.TrainConfig

A spec is TOML (the standard library's ``tomllib``)::

    name = "optimizers"          # optional: defaults to the file's stem
    description = "..."          # optional: a paragraph for the report
    [defaults]                   # any TrainConfig option (zoo.train's long option name, - or _), every run
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

Seeds: ``seeds = [0, 1, 2]`` at the top level (before any table) makes every run one run per seed, named
``<name>-s<seed>`` with ``seed = <seed>``; a ``seeds`` list in a ``[[runs]]`` table does the same for that run
only (it replaces the top-level list there), and ``python -m zoo.study SPEC --seeds 0 1 2`` replaces both.
The runner then sees ordinary runs; the report groups the seeds of one configuration (mean ± standard
deviation, zoo/studies/stats.py). A run (or [defaults]) that fixes ``seed`` AND has seeds is refused.

A run's options are, from weakest to strongest: ``[defaults]``, the protocol's table, the run's own
values (or its grid values), the run's own protocol table. A flag that switches something off is written
as its positive name set to false (``augment = false`` is ``--no-augment``); ``ablate`` takes a list.
Each option name is a field of ``zoo.run.TrainConfig`` and its value passes the same check as on the
command line, so a bad value fails now, in one line naming the file and the run, not hours into the study.
"""
import itertools
from pathlib import Path

try:
    import tomllib
except ImportError:          # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from zoo.run import TrainConfig, UsageError
from zoo.run.config import OPTION_CHECKS, check_names, checked

PROTOCOLS = ("cpu", "full")
TOP_LEVEL = ("name", "description", "seeds", "defaults", "protocol", "runs", "grid")
NOT_IN_SPECS = ("out", "data_dir")                     # the study decides these
SPEC_OPTIONS = ("model", "dataset") + tuple(k for k in OPTION_CHECKS if k not in NOT_IN_SPECS)
OFF_SWITCHES = ("augment", "download")                 # on by default: the command line's --no-<name>
SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


class SpecError(UsageError):
    """A spec that cannot be run, in one line naming the file and the place."""


def normalise(table, where):
    """A TOML table of options with '-' or '_' in the names -> {TrainConfig field: value}; unknown names fail."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of zoo.train options, got {table!r}")
    out = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in SPEC_OPTIONS:
            raise SpecError(f"{where}: unknown option {key!r}; zoo.train options: "
                            + ", ".join(sorted(n.replace("_", "-") for n in SPEC_OPTIONS)))
        out[name] = value
    return out


def protocol_table(table, protocol, where):
    protocols = table.get("protocol", {})
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise SpecError(f"{where}: unknown protocol {unknown[0]!r}; the protocols are {', '.join(PROTOCOLS)}")
    return normalise(protocols.get(protocol, {}), f"{where} [protocol.{protocol}]")


def value_name(name, value):
    """How a grid value shows in a run name: strings bare, flags as name/no-name, numbers after the name."""
    key = name.replace("_", "-")
    if isinstance(value, bool):
        return key if value else f"no-{key}"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return str(value) if isinstance(value, str) else f"{key}{value}"


def grid_runs(grid, where):
    grid = normalise(grid, where)
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: {name} must be a non-empty list of values, got {values!r}")
    for combination in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combination))
        yield "-".join(value_name(k, v) for k, v in chosen.items()), chosen, {}


def check_run(options, where):
    """The run's options with model and dataset present, named and valued as TrainConfig takes them."""
    missing = [k for k in ("model", "dataset") if k not in options]
    if missing:
        raise SpecError(f"{where}: no {' and no '.join(missing)} (set it in [defaults], the run or the grid)")
    try:
        check_names(options["model"], options["dataset"])
        checked({k: v for k, v in options.items() if k not in ("model", "dataset")})
    except UsageError as err:
        raise SpecError(f"{where}: {err}") from None
    return options


def command_line(options):
    """The zoo.train command line with these options (what --dry-run prints and config.json records)."""
    argv = [str(options["model"]), str(options["dataset"])]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name in ("model", "dataset"):
            continue
        if name in OFF_SWITCHES:                 # augment = false -> --no-augment
            argv += [] if value else [f"--no-{name}"]
        elif isinstance(value, bool):            # nesterov = true -> --nesterov
            argv += [flag] if value else []
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def read_toml(path):
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as err:
        raise SpecError(f"cannot read the spec {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path} is not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not UTF-8 text (byte {err.start}), as TOML must be") from None
    unknown = [k for k in spec if k not in TOP_LEVEL]
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r}; a spec has {', '.join(TOP_LEVEL)}")
    return spec


def check_seeds(seeds, where):
    """``seeds`` as a list of distinct ints >= 0 (None stays None); SpecError otherwise."""
    if seeds is None:
        return None
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise SpecError(f"{where}: seeds must be a non-empty list of integers >= 0, e.g. seeds = [0, 1, 2]; "
                        f"got {seeds!r:.60}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{where}: seeds lists a seed twice: {seeds}")
    return seeds


def seed_name(name, seed):
    """The folder name of ``name``'s run with ``seed``: '<name>-s<seed>'."""
    return f"{name}-s{seed}"


def expand_seeds(entries, seeds, override, fixed, where):
    """Each (name, options, own, seeds-of-the-run) entry as one entry per seed (``override`` first, then the
    run's own seeds, then the spec's ``seeds``); a run without any stays one run. ``fixed``: [defaults] or
    the protocol sets ``seed``."""
    out = []
    for name, options, own, run_seeds in entries:
        chosen = override or run_seeds or seeds
        if chosen is None:
            out.append((name, options, own))
            continue
        if fixed or "seed" in options or "seed" in own:
            raise SpecError(f"{where} run {name!r}: seed is set and so are seeds = {chosen}; give one of them "
                            "(seeds runs the configuration once per seed)")
        out += [(seed_name(name, seed), {**options, "seed": seed}, own) for seed in chosen]
    return out


def run_entries(spec, protocol, path):
    """(name, the run's own options, its own protocol options, its own seeds or None) of each [[runs]] table
    and grid point."""
    entries = []
    runs = spec.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise SpecError(f"{path}: runs must be [[runs]] tables (one per run), got {runs!r:.60}")
    if not isinstance(spec.get("grid", {}), dict):
        raise SpecError(f"{path}: grid must be a [grid] table of option = [values], got {spec['grid']!r:.60}")
    for i, run in enumerate(runs):
        where = f"{path} [[runs]] #{i + 1}"
        run = dict(run)
        if not isinstance(run.get("name"), str):
            raise SpecError(f"{where}: every run needs a name (its folder), e.g. name = \"baseline\"")
        name, own = run.pop("name"), protocol_table(run, protocol, where)
        run.pop("protocol", None)
        run_seeds = check_seeds(run.pop("seeds", None), where)
        entries.append((name, normalise(run, where), own, run_seeds))
    if "grid" in spec:
        entries += [(*entry, None) for entry in grid_runs(spec.get("grid", {}), f"{path} [grid]")]
    if not entries:
        raise SpecError(f"{path}: no runs; add [[runs]] tables or a [grid]")
    return entries


def load_spec(path, protocol="cpu", seeds=None):
    """Read a spec: {name, description, spec, protocol, defaults, overrides, seeds, runs: [{name, options,
    config, argv}]}: ``options`` are the run's own, ``config`` all of them merged (TrainConfig's names),
    ``argv`` the same as a zoo.train command line. ``seeds`` (a list: --seeds) replaces the spec's seeds."""
    path = Path(path)
    spec = read_toml(path)
    defaults = normalise(spec.get("defaults", {}), f"{path} [defaults]")
    overrides = protocol_table(spec, protocol, str(path))
    spec_seeds = check_seeds(spec.get("seeds"), f"{path} seeds")
    seeds = check_seeds(None if seeds is None else list(seeds), "--seeds")
    entries = expand_seeds(run_entries(spec, protocol, path), spec_seeds, seeds,
                           "seed" in defaults or "seed" in overrides, str(path))
    runs, seen = [], set()
    for name, options, own in entries:
        if not name or not set(name) <= SAFE_CHARS or name.startswith("."):
            raise SpecError(f"{path}: run name {name!r} is not a plain folder name (letters, digits, . _ + -)")
        if name in seen:
            raise SpecError(f"{path}: two runs are named {name!r}")
        seen.add(name)
        merged = check_run({**defaults, **overrides, **options, **own}, f"{path} run {name!r}")
        runs.append({"name": name, "options": {**options, **own}, "config": merged, "argv": command_line(merged)})
    return {"name": spec.get("name", path.stem), "description": spec.get("description", ""),
            "spec": str(path), "protocol": protocol, "defaults": defaults, "overrides": overrides,
            "seeds": seeds or spec_seeds, "runs": runs}


def train_config(run, out, resume=False, data_dir=None):
    """The TrainConfig of ``run`` (an entry of load_spec's runs) in folder ``out``, new or resumed."""
    options = {k: v for k, v in run["config"].items() if k not in ("model", "dataset")}
    model, dataset = run["config"]["model"], run["config"]["dataset"]
    data_dir = None if data_dir is None else str(data_dir)
    if resume:
        return TrainConfig.resumed(str(out), model, dataset, data_dir=data_dir, **options)
    return TrainConfig.new(model, dataset, out=str(out), data_dir=data_dir, **options)
