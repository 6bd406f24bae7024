"""Shared test set-up: the Numba kernels' threaded copies from a lower size than in production (so the tests'
moderate inputs run them too), and after a run, print the worst errors measured per function (gradcheck,
torch parity)."""
import pytest

from minitorch_cnn.kernels.cpu import jit, threads

THREADED_FROM = 1 << 16   # elements of work from which the tests run a kernel's threaded copy


@pytest.fixture(autouse=True)
def threaded_kernels_from_moderate_sizes(monkeypatch):
    """jit.PARALLEL_FROM (1 M elements: where threads pay on this machine) lowered for every test, so the
    threaded copies are checked on inputs of 64 k elements and up; the choice is speed, never numbers.
    The same for the batches of products shared out to the cores (threads.BATCHED_FROM, 4 M multiply-adds)."""
    monkeypatch.setattr(jit, "PARALLEL_FROM", THREADED_FROM)
    monkeypatch.setattr(threads, "BATCHED_FROM", THREADED_FROM)


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
