"""Studies: a grid of training runs and their report, ``python -m zoo.study SPEC.toml``.

    python -m zoo.study zoo/studies/optimizers.toml                   # the CPU protocol, into runs/study-...
    python -m zoo.study zoo/studies/optimizers.toml --protocol full --out runs/opt --only lenet5-sgd lenet5-adam
    python -m zoo.study zoo/studies/optimizers.toml --dry-run         # print the zoo.train commands only
    python -m zoo.study --report runs/opt                             # rebuild report.md from the folders
    python -m zoo.study zoo/studies/converged.toml --seeds 0 1 2      # each run once per seed: <name>-s<seed>
    python -m zoo.study zoo/studies/optimizers.toml --workers 2 --threads-per-run 1   # 2 runs at a time, here
    python -m zoo.study SPEC.toml --scheduler tcp://HOST:8786 --out /shared/runs/opt  # on a Dask cluster

A spec is a TOML file of runs: ``[defaults]``, ``[protocol.cpu]`` / ``[protocol.full]`` overrides,
``[[runs]]`` tables and an optional ``[grid]`` (the format: zoo/studies/spec.py). Each run is a
``zoo.run.TrainConfig`` trained into ``--out/<name>/``, one after another; the study resumes where it
stopped, records failed runs and goes on, and rewrites ``report.md``, ``results.csv``, ``curves.png`` and
``error_vs_time.png`` after every run (zoo/studies/runner.py, report.py). With ``--workers N`` or
``--scheduler`` the runs are ``zoo.train`` processes on the workers of a Dask cluster, several at a time
(zoo/studies/cluster.py, docs/cluster.md). This file is the command line only.
"""
import sys
from pathlib import Path

from .cli import EXIT_OK, ZooParser, natural_int_arg, positive_int_arg
from .run import UsageError
from .studies import load_spec, run_study, write_report
from .studies.report import UnreadableRun
from .studies.spec import PROTOCOLS


def build_parser():
    p = ZooParser("python -m zoo.study", "Run a study (a grid of zoo.train runs) and write its report, "
                  "or rebuild the report of a study folder with --report.")
    p.add_argument("spec", nargs="?", metavar="SPEC.toml", help="the study to run (see zoo/studies/)")
    p.add_argument("--out", help="the study folder (default: runs/study-<name>-<protocol>)")
    p.add_data_dir_option(help="where the datasets are, for every run")
    p.add_argument("--protocol", choices=PROTOCOLS, default="cpu", help="which [protocol.X] overrides apply")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these runs")
    p.add_argument("--seeds", nargs="+", type=natural_int_arg, metavar="SEED",
                   help="run every configuration once per seed, as <name>-s<seed> (replaces the spec's seeds)")
    p.add_argument("--dry-run", action="store_true", help="print each run's zoo.train command and stop")
    p.add_argument("--report", metavar="DIR", help="rebuild DIR's report from its run folders and stop")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int_arg, metavar="N",
                       help="run N runs at a time on this machine (a Dask LocalCluster of N worker processes)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run the runs on the workers of this Dask scheduler (--out: a folder they all share)")
    p.add_argument("--threads-per-run", type=positive_int_arg, metavar="K",
                   help="with --workers or --scheduler: each run's BLAS and Numba threads (default: the worker's "
                        "cores)")
    return p


def run(args):
    if args.report:
        if not Path(args.report).is_dir():
            raise UsageError(f"--report: {args.report} is not a folder")
        try:
            print(f"wrote {write_report(Path(args.report))}")
        except UnreadableRun as err:     # a corrupt study.json: one line, as for any bad input
            raise UsageError(str(err)) from None
        return EXIT_OK
    spec = load_spec(args.spec, args.protocol, args.seeds)
    out = Path(args.out or Path("runs") / f"study-{spec['name']}-{args.protocol}")
    if args.dry_run:
        data = f" --data-dir {args.data_dir}" if args.data_dir else ""
        for entry in spec["runs"]:
            print(f"python -m zoo.train {' '.join(entry['argv'])} --out {out / entry['name']}{data}")
        return EXIT_OK
    if args.workers is None and args.scheduler is None:
        if args.threads_per_run:
            raise UsageError("--threads-per-run sets the threads of runs on workers; give --workers N or "
                             "--scheduler too (a serial study uses OMP_NUM_THREADS / NUMBA_NUM_THREADS)")
        return run_study(spec, out, args.data_dir, args.only)
    return run_on_cluster(args, spec, out)


def run_on_cluster(args, spec, out):
    """The study on a Dask cluster (imported only here: dask is the optional [cluster] extra)."""
    from .studies.cluster import Cluster
    data_dir = Path(args.data_dir).absolute() if args.data_dir else None    # the workers' working folders
    out = out.absolute()                                                     # may differ from ours
    cluster = Cluster.local(args.workers, args.threads_per_run) if args.workers else \
        Cluster.connect(args.scheduler, args.threads_per_run)
    with cluster:
        return run_study(spec, out, data_dir, args.only, cluster=cluster)


def main(argv=None):
    """The command line. Exit status: 0, 1 (bad spec, or a run failed), 2 (bad option), 130 (Ctrl-C)."""
    parser = build_parser()

    def checked_run(args):
        if (args.spec is None) == (args.report is None):
            parser.error("give either SPEC.toml or --report DIR")
        return run(args)
    return parser.run(checked_run, argv)


if __name__ == "__main__":
    sys.exit(main())
