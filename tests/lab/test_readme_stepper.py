"""The README's stepper example, run exactly as written, prints the Winograd layer's view.

The block is read from README.md (the ```python block that calls ``Stepper(``) and run statement by
statement as at an interactive prompt, so a bare ``s.im2col()`` shows its value as it does for a reader
typing it in (or in a notebook). It crashed with ``KeyError: 'winograd'`` before ConvPlan.
"""
import ast
import contextlib
import io
import re
from pathlib import Path

import matplotlib

README = Path(__file__).resolve().parents[2] / "README.md"


def stepper_block():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    found = [b for b in blocks if "Stepper(" in b]
    assert len(found) == 1, f"expected one README python block calling Stepper(, found {len(found)}"
    return found[0]


def run_interactively(code):
    """Run ``code`` one top-level statement at a time in 'single' mode: expression values are shown."""
    namespace, out = {"__name__": "__readme__"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for stmt in ast.parse(code).body:
            exec(compile(ast.Interactive(body=[stmt]), str(README), "single"), namespace)
    return namespace, out.getvalue()


def test_readme_stepper_example_prints_the_winograd_view(monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.delenv("MINITORCH_DATA", raising=False)     # sample_image("photo") needs no data and no network
    namespace, out = run_interactively(stepper_block())
    assert "layer1.0.conv1" in out                           # the table
    assert "path winograd" in out and "36 GEMMs of (64, 64) @ (64, 64)" in out, out[-3000:]
    assert "forward scratch" in out and "backward scratch" in out
    assert "winograd" in str(namespace["st"]).split("layer1.0.conv1", 1)[1].splitlines()[0]
