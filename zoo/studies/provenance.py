"""The provenance of a study's runs in its report: a column per run and a paragraph on what differs.

Bitwise reproduction needs the same commit AND the same BLAS kernel (zoo/run/provenance.py), so the report
says, for the study as a whole, whether its runs were made at one commit, on one BLAS kernel and one vector
ISA, or names the runs that differ: comparing two runs made on different kernels compares arithmetic too.
"""
from zoo.run.provenance import blas_kernel, short_commit


def records(config):
    """The provenance records of a run's invocations (config.json), oldest first; None for an invocation
    from before provenance was recorded."""
    return [inv.get("provenance") for inv in config.get("invocations") or []]


def compact(record):
    """'1a2b3c4+dirty OpenBLAS 0.3.31 SkylakeX AVX-512' (or 'not recorded')."""
    if not record:
        return "not recorded"
    return f"{short_commit(record)} {blas_kernel(record)} {(record.get('cpu') or {}).get('isa') or '?'}"


def run_provenance(config):
    """The table cell: each distinct invocation's compact provenance, in order, joined by ' → '."""
    seen = list(dict.fromkeys(compact(r) for r in records(config)))
    return " → ".join(seen) if seen else "–"


def _spread(table, key):
    """{value: [run names]} of ``key`` (a function of a provenance record) over every invocation."""
    found = {}
    for row in table:
        for record in row.get("records") or []:
            if record:
                found.setdefault(key(record), [])
                if row["run"] not in found[key(record)]:
                    found[key(record)].append(row["run"])
    return found


def provenance_section(table):
    """Markdown lines: the commit(s), BLAS kernel(s) and ISA(s) of the study's runs, and which runs differ."""
    lines = ["Provenance (config.json of each run, one record per invocation; column *provenance*):", ""]
    # A run not trained yet has no invocations: nothing is missing from it.
    missing = [row["run"] for row in table if any(r is None for r in row.get("records") or [])]
    aspects = (("commit", lambda r: short_commit(r).removesuffix("+dirty")), ("BLAS kernel", blas_kernel),
               ("vector ISA", lambda r: (r.get("cpu") or {}).get("isa") or "?"))
    for name, key in aspects:
        spread = _spread(table, key)
        if len(spread) == 1:
            lines.append(f"- one {name} for every recorded run: {next(iter(spread))}")
        elif spread:
            parts = "; ".join(f"{value}: {', '.join(runs)}" for value, runs in spread.items())
            lines.append(f"- **the runs differ in {name}** ({parts}): their numbers are not bitwise comparable")
    dirty = _spread(table, lambda r: bool((r.get("git") or {}).get("dirty"))).get(True)
    if dirty:
        lines.append(f"- made from a source tree with uncommitted changes: {', '.join(dirty)}")
    if missing:
        lines.append(f"- not recorded (runs from before provenance was recorded): {', '.join(missing)}")
    return lines
