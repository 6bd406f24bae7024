"""The results page says only what its files say: every number in a table of docs/results.md, and every
result in README.md, is read back from the committed file it names, so a stale number fails CI.

The convention (the rule: each table names its source file):

* **A table** of docs/results.md is introduced by a ``Source:`` line: the nearest non-blank line above the
  table starts with ``Source:`` and names one or more CSV or JSON files, relative to the repository root
  (in backticks or bare, separated by commas or spaces; other words on the line are ignored)::

      Source: `docs/results/architectures/results.csv`

      | model | parameters | final test top-1 error |
      |---|---|---|
      | lenet5 | 61,706 | 14.50 % |

  A value stored in other units is named with a scale on the Source line, ``scale A`` or ``scale A/B``
  (each value is then also matched multiplied by A/B): ``Source: `benchmarks/results/models.json` scale
  1000/64`` for milliseconds per image from seconds per batch of 64.
  A table that is not built from a file (a list of commands, a protocol) says so instead, with its reason,
  as the nearest non-blank line above it: ``<!-- no-source: the options of each recipe, not results -->``.
  A table with neither fails: no table is skipped silently.
* **Every number** in the table's body (not its header) must be a value of the source files **rounded as
  printed**: a number printed with d decimals matches a value v when |v - number| <= 0.5 x 10^-d, or when
  100 v does (a fraction printed as a percentage, with or without the % sign). Thousands separators
  (61,706), bold (**5.20 %**), several numbers in a cell (1.2566 / 1.2566, 12.00 ± 2.00, 10.13–14.16) are
  read; numbers inside `code spans`, dates (2026-11-23) and digits inside names (lenet5, lr0.01) are not.
* **Rows are matched to records when they can be**: when the row's first cell is text (a run or model name)
  equal to a text value of a CSV row or of a JSON object (or a JSON object's key), the row's numbers must
  come from those records (all of them with that name, nested values included); otherwise from anywhere
  in the source files. The values of a file include the numbers inside its text values ("lr=0.05").
* **README.md**: each line outside code blocks that states a percentage is a results line; it names its
  source on the same line, visibly (``Source: path``) or as a comment (``<!-- Source: path -->``), and each
  percentage on it (and each number after a ±) is read back the same way. ``<!-- no-source: reason -->``
  on the line exempts it.
"""
import csv
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NUMBER = re.compile(r"(?<![\w.,])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.]|,\d)")
NOT_NUMBERS = re.compile(r"`[^`]*`|\]\([^)]*\)|<!--.*?-->|\b\d{4}-\d{2}-\d{2}\b")   # code, link targets, dates
SOURCE = re.compile(r"^\s*(?:<!--\s*)?Source:\s*(.+?)(?:\s*-->)?\s*$", re.IGNORECASE)
NO_SOURCE = re.compile(r"<!--\s*no-source:\s*(\S.*?)\s*-->")
PATH = re.compile(r"[\w./-]+\.(?:csv|json)\b")
SCALE = re.compile(r"\bscale\s+(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))?")
PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s?%|±\s*(\d+(?:\.\d+)?)")


class PageError(AssertionError):
    """A table or line of a page that does not say what its source says."""


# ----------------------------------------------------------------------------- the values of a source file

def numbers_in(text):
    """The numbers written in ``text`` as (value, decimals), outside code spans, link targets and dates."""
    found = []
    for match in NUMBER.finditer(NOT_NUMBERS.sub(" ", text)):
        token = match.group(1).replace(",", "")
        mantissa = re.split("[eE]", token)[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        if "e" in token.lower():
            decimals -= int(re.split("[eE]", token)[1])
        found.append((float(token), decimals))
    return found


def _scalars(value):
    """The numbers of a JSON value or CSV cell: a number, or the numbers written inside a text."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return [v for v, _ in numbers_in(value)]
    return []


def _walk(value):
    """Every number nested in a JSON value."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _walk(v)]
    if isinstance(value, list):
        return [n for v in value for n in _walk(v)]
    return _scalars(value)


def _records(value, out):
    """(names, numbers) of every JSON object: its direct text values and keys of object values, all its
    nested numbers."""
    if isinstance(value, dict):
        names = {v.strip() for v in value.values() if isinstance(v, str)}
        out.append((names, _walk(value)))
        for key, child in value.items():
            if isinstance(child, (dict, list)):
                out.append(({str(key)}, _walk(child)))
                _records(child, out)
    elif isinstance(value, list):
        for child in value:
            _records(child, out)
    return out


def load_source(path):
    """(all numbers, records) of a CSV or JSON file; PageError naming it if it is absent or unreadable."""
    if not path.is_file():
        raise PageError(f"source {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            document = json.loads(text)
            return _walk(document), _records(document, [])
        rows = list(csv.reader(text.splitlines()))
    except (ValueError, csv.Error) as err:
        raise PageError(f"source {path} is unreadable: {err}") from None
    records = [({c.strip() for c in row}, [n for c in row for n in _scalars(c)]) for row in rows[1:]]
    return [n for _, numbers in records for n in numbers], records


def matches(number, decimals, values, scale=None):
    """True if a value of ``values`` (or 100 x it, or ``scale`` x it) rounds to ``number`` printed with
    ``decimals`` decimals."""
    tolerance = 0.5 * 10.0 ** -decimals * (1 + 1e-9) + 1e-12
    factors = (1.0, 100.0) if scale is None else (1.0, 100.0, scale)
    return any(abs(f * v - number) <= tolerance for v in values if math.isfinite(v) for f in factors)


# ----------------------------------------------------------------------------- the page

def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables(text):
    """Each markdown table outside fenced code: (line number of its header, nearest non-blank line above
    it, body rows as lists of cells)."""
    lines, found, fenced, i = text.splitlines(), [], False, 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.lstrip().startswith("|") and i + 1 < len(lines) \
                and re.fullmatch(r"\s*\|?\s*:?-{3,}.*", lines[i + 1]):
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            found.append((i + 1, above, [_cells(row) for row in lines[i + 2:end]]))
            i = end
            continue
        i += 1
    return found


def source_paths(line, root):
    """(the files a Source: line names, its scale or None), or (None, None) if ``line`` is not one."""
    match = SOURCE.match(line)
    if not match:
        return None, None
    scale = SCALE.search(match.group(1))
    factor = None if scale is None else float(scale.group(1)) / float(scale.group(2) or 1)
    return [root / p for p in PATH.findall(match.group(1))], factor


def _key(cell):
    return cell.replace("**", "").replace("`", "").strip()


def check_table(where, above, rows, root):
    """The problems of one table (a list of one-line messages; empty when every number is read back)."""
    if NO_SOURCE.search(above):
        return []
    paths, scale = source_paths(above, root)
    if not paths:
        return [f"{where}: the table has no 'Source: FILE' line (nor <!-- no-source: reason -->) right above it"]
    try:
        loaded = [load_source(p) for p in paths]
    except PageError as err:
        return [f"{where}: {err}"]
    everything = [v for values, _ in loaded for v in values]
    problems = []
    for row in rows:
        key = _key(row[0]) if row else ""
        named = [numbers for _, records in loaded for names, numbers in records if key and key in names]
        values = [v for numbers in named for v in numbers] if named and not numbers_in(key) else everything
        for cell in row:
            for number, decimals in numbers_in(cell.replace("**", "")):
                if not matches(number, decimals, values, scale):
                    scope = f"the records named {key!r}" if values is not everything else "the source"
                    problems.append(f"{where}, row {key!r}: {cell!r} is not in {scope} "
                                    f"({', '.join(str(p.relative_to(root)) for p in paths)})")
    return problems


def check_page(path, root=ROOT):
    """Every problem of the tables of a markdown page."""
    return [problem for line, above, rows in tables(path.read_text(encoding="utf-8"))
            for problem in check_table(f"{path.name}:{line}", above, rows, root)]


def check_results_lines(path, root=ROOT):
    """Every problem of a page's results lines (README.md: lines outside code stating a percentage)."""
    problems, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not PERCENT.search(NOT_NUMBERS.sub(" ", line)) or NO_SOURCE.search(line):
            continue
        marker = re.search(r"Source:\s*(.+?)(?:-->|$)", line, re.IGNORECASE)
        paths = [root / p for p in PATH.findall(marker.group(1))] if marker else []
        if not paths:
            problems.append(f"{path.name}:{number}: a result without 'Source: FILE' on its line: {line.strip()!r}")
            continue
        try:
            values = [v for p in paths for v in load_source(p)[0]]
        except PageError as err:
            problems.append(f"{path.name}:{number}: {err}")
            continue
        for match in PERCENT.finditer(NOT_NUMBERS.sub(" ", line)):
            token = match.group(1) or match.group(2)
            decimals = len(token.split(".")[1]) if "." in token else 0
            if not matches(float(token), decimals, values):
                problems.append(f"{path.name}:{number}: {token} is not in {', '.join(str(p) for p in paths)}")
    return problems


# ----------------------------------------------------------------------------- the checker, on pages written here

RESULTS_CSV = """run,model,params,final_top1_err,final_test_loss,images_per_s,setting
lenet5-mnist,lenet5,61706,0.14500000000000002,0.4721013774871826,2463.0032542174226,lr=0.05
vgg16-mnist,vgg16,33653962,0.72,1.6998,30.2,(defaults)
"""
PARITY_JSON = {"results": [{"model": "lenet5", "history": {"minitorch": [
    {"epoch": 1, "train_loss": 1.2565782505512237, "test_top1_err": 0.119},
    {"epoch": 2, "train_loss": 0.23245, "test_top1_err": 0.068}]}}]}

PAGE = """# Results

Each model's recipe on 2,000 images, 3 epochs (this prose is not checked: 96 steps).

Source: `results/arch.csv`

| model | parameters | final test top-1 error | test loss | images/s | setting |
|---|---|---|---|---|---|
| lenet5 | 61,706 | **14.50 %** | 0.4721 | 2463 | `--lr 0.05` (lr=0.05) |
| vgg16 | 33,653,962 | 72.00 % | 1.6998 | 30 | – |

Source: results/parity.json and results/arch.csv

| epoch | train loss | test top-1 error |
|---|---|---|
| 1 | 1.2566 / 1.2566 | 11.90 % |
| 2 | 0.2325 | 6.8 |

<!-- no-source: the commands of each protocol, not results -->
| protocol | epochs |
|---|---|
| cpu | 3 |

```
| not a table | 99 |
|---|---|
```
"""


@pytest.fixture
def example(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "arch.csv").write_text(RESULTS_CSV)
    (tmp_path / "results" / "parity.json").write_text(json.dumps(PARITY_JSON))
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    return tmp_path, page


def problems_of(root, page, text):
    page.write_text(text)
    return check_page(page, root)


def test_a_page_that_reads_back(example):
    root, page = example
    assert check_page(page, root) == []
    assert [(line, len(rows)) for line, _, rows in tables(PAGE)] == [(7, 2), (14, 2), (20, 1)]   # not the fenced one


@pytest.mark.parametrize("old, new, message", [
    ("**14.50 %**", "**14.40 %**", "row 'lenet5': '**14.40 %**' is not in the records named 'lenet5'"),
    ("| 0.4721 |", "| 0.4722 |", "'0.4722' is not in"),
    ("61,706", "61,707", "'61,707' is not in"),
    ("| 2463 |", "| 2460 |", "'2460' is not in"),
    ("1.2566 / 1.2566", "1.2566 / 1.2567", "'1.2566 / 1.2567' is not in the source"),
    ("| 2 | 0.2325 | 6.8 |", "| 2 | 0.2325 | 6.9 |", "'6.9' is not in the source"),
    ("| 72.00 % |", "| 14.50 % |", "row 'vgg16': '14.50 %' is not in the records named 'vgg16'"),   # another row's
    ("Source: `results/arch.csv`\n", "", "results.md:6: the table has no 'Source: FILE' line"),
    ("<!-- no-source: the commands of each protocol, not results -->\n", "",
     "results.md:19: the table has no 'Source: FILE' line"),
    ("Source: `results/arch.csv`", "Source: `results/gone.csv`", "results/gone.csv does not exist"),
])
def test_a_stale_or_unsourced_table_fails(example, old, new, message):
    root, page = example
    assert old in PAGE
    problems = problems_of(root, page, PAGE.replace(old, new, 1))
    assert len(problems) == 1 and message in problems[0], problems


def test_a_scaled_source(example):
    root, page = example
    (root / "bench.json").write_text(json.dumps({"rows": [{"model": "lenet5", "median_s": 0.01861298999938299}]}))
    table = "| model | train, ms / image |\n|---|---|\n| lenet5 | 0.29 |\n"
    assert problems_of(root, page, "Source: `bench.json` scale 1000/64\n\n" + table) == []     # 0.2908 ms
    assert len(problems_of(root, page, "Source: `bench.json`\n\n" + table)) == 1
    assert len(problems_of(root, page, "Source: `bench.json` scale 1000/64\n\n" + table.replace("0.29", "0.53"))) == 1


def test_numbers_as_printed():
    assert numbers_in("**5.20 %** / 1,443,702,784 and 12.00 ± 2.00, 10.13–14.16") == [
        (5.2, 2), (1443702784.0, 0), (12.0, 2), (2.0, 2), (10.13, 2), (14.16, 2)]
    assert numbers_in("lenet5 mobilenet_v1 lr0.01 `--epochs 3` 2026-11-23 [a](runs/x2.csv) 5e-8 -0.5") == [
        (5e-8, 8), (-0.5, 1)]
    assert matches(14.5, 2, [0.14500000000000002]) and matches(3477, 0, [3476.5]) and not matches(3478, 0, [3476.5])
    assert matches(0.47, 2, [0.4721]) and not matches(0.473, 3, [0.4721])


def test_readme_results_lines(tmp_path):
    (tmp_path / "converged.csv").write_text("configuration,mean_top1_err,std_top1_err\nlenet5-mnist,0.0082,0.0004\n")
    readme = tmp_path / "README.md"
    good = ("LeNet-5 reaches 0.82 % ± 0.04 test error on MNIST over 3 seeds <!-- Source: converged.csv -->\n"
            "Padding is 10 % of the image <!-- no-source: arithmetic, not a result -->\n"
            "```\nprint('50 % zeros')\n```\nNo percentage here: 3 seeds, 10 epochs.\n")
    readme.write_text(good)
    assert check_results_lines(readme, tmp_path) == []
    readme.write_text(good.replace("0.82 %", "0.85 %"))
    assert check_results_lines(readme, tmp_path) == ["README.md:1: 0.85 is not in " + str(tmp_path / "converged.csv")]
    readme.write_text("LeNet-5 gets 99.34 % on MNIST.\n")
    assert check_results_lines(readme, tmp_path) == [
        "README.md:1: a result without 'Source: FILE' on its line: 'LeNet-5 gets 99.34 % on MNIST.'"]


# ----------------------------------------------------------------------------- the real pages

def test_results_page_reads_back_from_its_sources():
    """Every table of docs/results.md names its source file and every number in it is read back from it."""
    problems = check_page(ROOT / "docs" / "results.md")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def test_readme_results_read_back_from_their_sources():
    problems = check_results_lines(ROOT / "README.md")
    assert not problems, "\n".join(problems)
