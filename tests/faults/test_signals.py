"""Signals and divergence: SIGTERM is Ctrl-C (schedulers stop jobs that way), a diverging run prints its one
documented line and no NumPy warnings, and an interrupted run resumes."""
import signal
import warnings

from conftest import error_lines, train
from test_bad_outcomes import signal_at

from zoo.run.checkpoint import load_checkpoint


def test_sigterm_saves_at_the_batch_boundary_and_exits_143(data_dir, tmp_path, monkeypatch, capsys):
    out, unhandled = tmp_path / "run", []
    # A stand-in for the default action (which would end pytest itself): records a SIGTERM nobody handled.
    def stand_in(signum, frame):
        unhandled.append(signum)

    before = signal.signal(signal.SIGTERM, stand_in)
    try:
        signal_at(monkeypatch, 2, signum=signal.SIGTERM)
        status = train(data_dir, out, "--epochs", "1", "--limit-train", "48")
        assert signal.getsignal(signal.SIGTERM) is stand_in      # the previous handler is back after the run
    finally:
        signal.signal(signal.SIGTERM, before)
    assert status == 143 and not unhandled
    line = error_lines(capsys)[-1]
    assert line.startswith("terminated (SIGTERM): saved") and "--resume" in line, line
    assert load_checkpoint(out)[0]["position"]["batch"] == 2


def test_divergence_prints_no_numpy_warnings(data_dir, tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train(data_dir, tmp_path / "run", "--lr", "1e30", "--epochs", "1", "--limit-train", "48") == 3
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert error_lines(capsys)[-1].startswith("error: training diverged")


def test_resuming_a_nan_checkpoint_blames_the_checkpoint_not_the_learning_rate(data_dir, tmp_path, capsys):
    import numpy as np
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--limit-train", "16") == 0
    with np.load(out / "checkpoint.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["model/net.3.weight"] = arrays["model/net.3.weight"] * np.nan
    np.savez(out / "checkpoint.npz", **arrays)
    capsys.readouterr()
    assert train(data_dir, out, "--resume", "--epochs", "2") == 1
    line = error_lines(capsys)[-1]
    assert "holds inf or NaN weights" in line and "--lr" not in line, line
