"""The offline grader: ``python -m minitorch_cnn.lab.grade LAB.py [--junit FILE] [--json FILE]``.

Loads the functions and classes a lab defines (its imports and definitions only: the lab's own cells,
training included, do not run) and puts each exercise it knows through hidden checks on shapes that
hypothesis draws (odd padding, strides that skip pixels, groups, pooling windows of every size, batches of
one), against the framework's own layers. Says per exercise what failed and where, e.g.

    FAIL exercise conv_naive: wrong at stride=2 pad=1 x (1, 2, 5, 4) w (3, 2, 3, 2): first at (n=0, f=1, i=2, j=0)

exits 1 when any check failed, and writes JUnit XML / JSON for classroom tools. No server, no key.
Needs hypothesis (``pip install -e ".[labs]"``).
"""
import argparse
import ast
import json
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .hidden_checks import GRADERS, Wrong  # the checks live there; this file loads a lab, runs them, reports

EXAMPLES = 25                 # hypothesis examples per exercise: a few seconds for the slowest (the loops)


# ---------------------------------------------------------------- loading a lab, running, reporting
def load_definitions(path):
    """The lab's imports, functions and classes, run in a fresh namespace (its cells are not run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                             ast.ClassDef))]
    namespace = {"__name__": "graded_lab", "__file__": str(path)}
    sys.path.insert(0, str(path.parent))          # its labcheck.py, beside it
    try:
        exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    finally:
        sys.path.remove(str(path.parent))
    return namespace


def exercise_labels(path):
    """function name -> 'exercise 2.1 (conv_naive)', numbered as the student copy numbers them: the lab's
    number and the ``## Exercise N`` heading above the definition. Read from the headings, which stay in a
    copy the student has finished (its NotImplementedError markers are gone by then)."""
    from .student import DEFINITION, EXERCISE
    lab = int(path.name[:2]) if path.name[:2].isdigit() else 0
    labels, exercise = {}, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        heading, defined = EXERCISE.match(line), DEFINITION.match(line)
        exercise = int(heading.group(1)) if heading else exercise
        if defined and not defined.group(1) and exercise:          # a top-level def/class under a heading
            labels.setdefault(defined.group(2), f"exercise {lab}.{exercise} ({defined.group(2)})")
    return labels


def run_check(fn, grader, examples=EXAMPLES):
    """(passed, message): ``grader`` on ``examples`` hypothesis-drawn cases, shrunk to the simplest failing."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True, verbosity=Verbosity.quiet,
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def hidden(data):
        grader(fn, data.draw, st)
    try:
        hidden()
    except Wrong as err:
        return False, str(err)
    except NotImplementedError:
        return False, "not implemented yet"
    except Exception as err:                      # the student's code raised: say what, not a traceback
        return False, f"raised {type(err).__name__}: {err}"
    return True, f"{examples} hidden cases passed"


def grade(path, examples=EXAMPLES):
    """[{exercise, function, passed, message}] for every exercise of the lab at ``path`` that has a check."""
    path = Path(path)
    namespace, labels = load_definitions(path), exercise_labels(path)
    results = []
    for name in [n for n in labels if n in GRADERS] + [n for n in GRADERS if n not in labels]:  # lab's order
        if name in namespace:
            passed, message = run_check(namespace[name], GRADERS[name], examples)
            results.append({"exercise": labels.get(name, f"exercise ({name})"), "function": name,
                            "passed": passed, "message": message})
    return results


def write_junit(path, lab, results):
    failures = sum(not r["passed"] for r in results)
    lines = [f'<testsuite name={quoteattr(lab)} tests="{len(results)}" failures="{failures}">']
    for r in results:
        case = f'  <testcase classname={quoteattr(lab)} name={quoteattr(r["exercise"])}'
        lines.append(case + " />" if r["passed"] else
                     case + f'>\n    <failure message={quoteattr(r["message"])} />\n  </testcase>')
    Path(path).write_text("\n".join(['<?xml version="1.0" encoding="utf-8"?>'] + lines + ["</testsuite>"]) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minitorch_cnn.lab.grade", description=__doc__.split("\n")[0])
    p.add_argument("lab", help="a lab file, e.g. student/02_convolution.py")
    p.add_argument("--junit", help="write a JUnit XML report here")
    p.add_argument("--json", help="write a JSON report here")
    p.add_argument("--examples", type=int, default=EXAMPLES, help=f"cases per exercise (default {EXAMPLES})")
    args = p.parse_args(argv)
    lab = Path(args.lab)
    try:
        results = grade(lab, args.examples)
    except (OSError, SyntaxError) as err:
        print(f"grade: cannot load {lab}: {err}", file=sys.stderr)
        return 2
    for r in results:
        print(f"{'PASS' if r['passed'] else 'FAIL'} {r['exercise']}: {r['message']}")
    passed = sum(r["passed"] for r in results)
    print(f"{passed} of {len(results)} exercises passed the hidden checks" if results else
          f"{lab.name}: the grader has no hidden checks for this lab's exercises (run the lab itself)")
    if args.junit:
        write_junit(args.junit, lab.stem, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"lab": lab.stem, "passed": passed, "total": len(results),
                                               "exercises": results}, indent=1) + "\n")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
