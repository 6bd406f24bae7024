"""The benchmark tables of docs/performance.md, regenerated from the results JSON that the benchmarks wrote.

    python -m benchmarks.readme_tables [--results DIR [--results DIR ...]] [--write [docs/performance.md]]

Prints the markdown (a dated line per results folder saying where, on which vector instruction set and
BLAS kernel the numbers were measured, the per-op table from kernels.json and the per-model table from
models.json; with several folders, measured on different machines, their rows share one table and each
row's "machine" cell says which it ran on). With ``--write``
it replaces the part of the file between the two ``benchmark tables`` markers, atomically. The tables
lived in the README until it became the user guide; dated measurements are docs/performance.md's now
(the module keeps its name, so the documented command keeps working).
"""
import argparse
import json
from pathlib import Path

from minitorch_cnn.files import atomic_write_text

from .harness import blas_line, machine_label

RESULT_FILES = ("kernels.json", "models.json")

BEGIN, END = "<!-- benchmark tables: begin -->", "<!-- benchmark tables: end -->"
TABLES_FILE = "docs/performance.md"     # where the markers are


def _ms(d):
    return d["median_s"] * 1e3 if d else None


def _num(v):
    return "-" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}")


def _ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _guard(dicts):
    return max((d["guard_others_max"] for d in dicts if d and "guard_others_max" in d), default=0.0)


def _rows(results):
    """(results file, row) for every row of every results file, in order."""
    return [(res, row) for res in results for row in res["rows"]]


def kernel_table(results):
    lines = ["| op | fwd ms | PyTorch | ratio | fwd+bwd ms | PyTorch | ratio | guard max | machine |",
             "|---" * 9 + "|"]
    for res, r in _rows(results):
        f, tf, fb, tfb = (_ms(r.get(k)) for k in ("ours_fwd", "torch_fwd", "ours_fwd_bwd", "torch_fwd_bwd"))
        guard = _guard([r.get(k) for k in ("ours_fwd", "torch_fwd", "ours_fwd_bwd", "torch_fwd_bwd")])
        name = r["op"] + (" (winograd)" if r.get("algorithm") == "winograd" else "")
        lines.append(f"| {name} | {_num(f)} | {_num(tf)} | {_ratio(f, tf)} | {_num(fb)} | {_num(tfb)} | "
                     f"{_ratio(fb, tfb)} | {guard:.0%} | {machine_label(res['machine'])} |")
    return "\n".join(lines)


def model_table(results):
    lines = ["| model | train step ms | PyTorch | ratio | images/s | forward ms | PyTorch | ratio | peak step MB "
             "| PyTorch | ratio | guard max | machine |", "|---" * 13 + "|"]
    for res, r in _rows(results):
        o, t = r["ours"], r.get("torch") or {}
        if "error" in o:
            lines.append(f"| {r['model']} | error: {o['error']} |" + " |" * 10 + f" {machine_label(res['machine'])} |")
            continue
        tr, ttr, fw, tfw = _ms(o.get("train")), _ms(t.get("train")), _ms(o.get("forward")), _ms(t.get("forward"))
        mb, tmb = o["peak_step_bytes"] / 2 ** 20, (t.get("peak_step_bytes") or 0) / 2 ** 20
        guard = _guard([o.get("train"), o.get("forward"), t.get("train"), t.get("forward")])
        lines.append(f"| {r['model']} | {_num(tr)} | {_num(ttr)} | {_ratio(tr, ttr)} | {res['batch'] / (tr / 1e3):.0f} "
                     f"| {_num(fw)} | {_num(tfw)} | {_ratio(fw, tfw)} | {mb:.0f} | {tmb:.0f} | {_ratio(mb, tmb)} "
                     f"| {guard:.0%} | {machine_label(res['machine'])} |")
    return "\n".join(lines)


def _provenance(name, res):
    m = res["machine"]
    return (f"`{name}`: {m['date']}, {m.get('cpu', '')} x{m['cpus']} ({m.get('vector_isa', 'vector ISA not recorded')}"
            f", Numba's LLVM target {m.get('llvm_cpu') or 'not recorded'}), batch {res['batch']}, NumPy {m['numpy']} "
            f"({blas_line(m.get('blas', [{'note': 'BLAS kernel not recorded'}]))}; overrides removed: "
            f"{m.get('blas_overrides_removed', 'not recorded')}), Numba {m.get('numba', '-')}, "
            f"PyTorch {m.get('torch', 'absent')}.")


def machine_folders(root):
    """``root`` and each of its sub-folders that holds results (one per other machine, e.g. ``avx512/``)."""
    root = Path(root)
    subs = sorted(d for d in root.iterdir() if d.is_dir() and any((d / n).exists() for n in RESULT_FILES))
    return [root, *subs]


def tables(results_dirs):
    """The markdown of one results folder with its machine sub-folders, or of a list of folders (one machine
    each): one table per kind, each row's machine named."""
    if isinstance(results_dirs, (str, Path)):
        root, dirs = Path(results_dirs), machine_folders(results_dirs)
    else:
        root, dirs = None, [Path(d) for d in results_dirs]
    parts = []
    for name, build in (("kernels.json", kernel_table), ("models.json", model_table)):
        paths = [d / name for d in dirs if (d / name).exists()]
        if paths:
            results = [json.loads(p.read_text()) for p in paths]
            parts += [_provenance(_label(p, root) if len(paths) > 1 else name, res) for p, res in zip(paths, results)]
            parts += ["", build(results), ""]
    return "\n".join(parts).rstrip() + "\n"


def _label(path, root):
    """A results file named relative to the root folder given (``avx512/models.json``), else by its folder."""
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return f"{path.parent.name}/{path.name}"


def write(path, text):
    """Replace what stands between the markers in ``path`` (docs/performance.md) by ``text``."""
    path = Path(path)
    old = path.read_text(encoding="utf-8")
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{path}: no '{BEGIN}' ... '{END}' markers to replace between "
                         f"(the benchmark tables live in {TABLES_FILE})")
    head, rest = old.split(BEGIN, 1)
    new = head + BEGIN + "\n" + text + rest[rest.index(END):]
    atomic_write_text(path, new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", action="append", help="a results folder (default benchmarks/results "
                        "and its machine sub-folders); repeat it for results measured on other machines")
    parser.add_argument("--write", metavar="FILE", nargs="?", const=TABLES_FILE,
                        help=f"replace the tables between the markers in FILE (default {TABLES_FILE})")
    args = parser.parse_args(argv)
    text = tables(args.results or "benchmarks/results")
    print(text)
    if args.write:
        write(args.write, text)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
