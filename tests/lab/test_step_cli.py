"""python -m zoo.step: bad input is one line on stderr and a non-zero exit (before the slow stepper runs);
--html writes the page, --backward adds gradients."""
import pytest

from zoo import step as step_cli


@pytest.mark.parametrize("argv, exit_code, message", [
    (["--dataset", "foo"], 1, "unknown dataset 'foo'"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}/empty"], 1, "cifar10 files are not here"),
    (["--image", "{tmp}/missing.png"], 1, "--image: no file at"),
    (["--image", "{tmp}/notes.txt"], 1, "expected a PNG or JPEG file"),
    (["--image", "{tmp}/broken.png"], 1, "is not a readable PNG/JPEG image"),
    (["--out", "{tmp}/notes.txt"], 1, "--out: expected a folder"),
    (["--html", "{tmp}/nowhere/page.html"], 1, "--html: the folder"),
    (["--html", "{tmp}"], 1, "--html: expected a file name"),
    (["--backward", "10"], 1, "--backward: expected a class label below --num-classes 10"),
    (["--num-classes", "0"], 2, "--num-classes: expected an integer >= 1, got '0'"),
    (["--samples", "0"], 2, "--samples: expected an integer >= 1, got '0'"),
    (["--repeat", "0"], 2, "--repeat: expected an integer >= 1"),
    (["--backward", "-1"], 2, "--backward"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, capsys, argv, exit_code, message):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = step_cli.main(["lenet5", *argv])
    except SystemExit as exit_:       # argparse's own exit for a bad option value
        code = exit_.code
    err = capsys.readouterr().err
    assert code == exit_code and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_index_out_of_range_names_the_dataset(tmp_path, capsys, monkeypatch):
    """--index past the end: checked by sample_image against the real test set (skips without the files)."""
    from minitorch_cnn.data import DataError, load_dataset
    try:
        n = len(load_dataset("fashion-mnist", "test", download=False))
    except DataError as err:
        pytest.skip(f"no Fashion-MNIST files here ({str(err).splitlines()[0]})")
    assert step_cli.main(["lenet5", "--dataset", "fashion-mnist", "--index", str(n)]) == 1
    err = capsys.readouterr().err
    assert f"index {n} is out of range for fashion-mnist test ({n} images)" in err and len(err.splitlines()) == 1


def test_html_and_backward(tmp_path, capsys):
    page = tmp_path / "lenet5.html"
    assert step_cli.main(["lenet5", "--backward", "3", "--html", str(page), "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "loss for class 3:" in out and f"wrote {page}" in out
    text = page.read_text(encoding="utf-8")
    assert text.count("gradient at the output") == 12 and text.count("medians of 2 runs") == 12
