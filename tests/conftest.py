"""Shared test set-up: after a run, print the worst errors measured per function (gradcheck, torch parity)."""


def pytest_terminal_summary(terminalreporter):
    try:
        from support.numerics import WORST
    except ImportError:
        return
    for table in ("functional", "engine", "nn"):
        rows = {(f, m): v for (t, f, m), v in WORST.items() if t == table}
        if not rows:
            continue
        measures = sorted({m for _, m in rows})
        terminalreporter.section(f"worst errors measured this run: {table}")
        terminalreporter.write_line(f"{'':<22}" + "".join(f"{m[:22]:>24}" for m in measures))
        for family in sorted({f for f, _ in rows}):
            cells = "".join(f"{rows[(family, m)]:>24.2e}" if (family, m) in rows else f"{'-':>24}"
                            for m in measures)
            terminalreporter.write_line(f"{family[:22]:<22}{cells}")
