"""A failed run's message reaches the study report whole: zoo.train's multi-line errors (the folders it looked in,
the URLs it tried) neither break the report's table nor lose their lines on a Dask worker."""
import json

from zoo.studies.cluster import last_words
from zoo.studies.report import write_report

MESSAGE = "CIFAR-10: files not found.\n  Looked in:\n    /data/a\n    /data/b\n  tried:\n    https://x: offline"


def test_last_words_keep_every_line_of_the_last_error(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("== host: python -m zoo.train ...\nepoch 1/3:  10%|#   | 3/30\r\nerror: an old one\n"
                   "epoch 1/3: 100%\nerror: " + MESSAGE + "\n\n")
    assert last_words(log) == MESSAGE
    log.write_text("Traceback (most recent call last):\nKeyError: 'x'\n")
    assert last_words(log) == "KeyError: 'x'"                          # no error: line: the last line


def test_a_multi_line_failure_keeps_the_table_whole(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"name": "t", "spec": "t.toml", "protocol": "cpu", "defaults": {},
                                                     "overrides": {}, "runs": [
        {"name": "bad", "status": "failed", "message": MESSAGE}]}))
    text = write_report(tmp_path).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| bad |"))
    assert "failed: CIFAR-10: files not found. (more under *Failed runs*)" in row
    assert "  ```\n  CIFAR-10: files not found.\n    Looked in:\n      /data/a\n      /data/b" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len({line.count("|") - line.count("\\|") for line in table}) == 1       # every row has its cells
