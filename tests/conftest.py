"""Shared test set-up: print the worst errors measured this session (gradcheck and torch parity) per op."""


def pytest_terminal_summary(terminalreporter):
    try:
        from test_functional import WORST
    except ImportError:
        return
    if not WORST:
        return
    ops = sorted({op for op, _ in WORST})
    measures = ["gradcheck float64", "torch parity float64", "torch parity float32"]
    terminalreporter.section("worst errors per function (this run)")
    terminalreporter.write_line(f"{'function':<22}" + "".join(f"{m:>24}" for m in measures))
    for op in ops:
        cells = "".join(f"{WORST[(op, m)]:>24.2e}" if (op, m) in WORST else f"{'-':>24}" for m in measures)
        terminalreporter.write_line(f"{op:<22}{cells}")
