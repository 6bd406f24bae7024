"""Student copies of the labs: ``python -m minitorch_cnn.lab.student docs/labs -o student/``.

Writes each lab (``NN_name.py``) into the output folder with its solutions taken out, and the labs'
shared ``labcheck.py`` beside them, so that ``python student/02_convolution.py`` runs as it is.
In a lab's source:

- a code block between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes
  ``raise NotImplementedError("exercise 2.2 (im2col_naive)")`` at the same indentation: the lab's number,
  the number of the ``## Exercise N`` heading above it, and the function it sits in. labcheck reports
  it as "exercise 2.2 (im2col_naive): not implemented yet" and the lab runs on to its summary;
- the same markers inside a markdown cell (the answer to a written question) become
  ``*(your answer here)*``;
- a trailing comment that starts ``# [solution]`` (a hint that gives the answer away) is dropped.

The solution copy (docs/labs) stays runnable as it is: the markers are comments.
"""
import argparse
import re
import shutil
import sys
from pathlib import Path

from minitorch_cnn.files import atomic_write_text

BEGIN, END = re.compile(r"^(\s*)# BEGIN SOLUTION"), re.compile(r"^\s*# END SOLUTION")
EXERCISE = re.compile(r"^# #+ Exercise (\d+)")              # a markdown heading "## Exercise 2: ..."
DEFINITION = re.compile(r"^(\s*)(?:def|class) (\w+)")
SOLUTION_COMMENT = re.compile(r"\s*# \[solution\].*$")
LAB_FILE = re.compile(r"^(\d\d)_\w+\.py$")


def _enclosing_name(lines, indent):
    """The dotted name of the def/class the block (at ``indent``) sits in: 'Tanh.backward'."""
    names, depth = [], len(indent)
    for line in reversed(lines):
        found = DEFINITION.match(line)
        if found and len(found.group(1)) < depth:
            names.append(found.group(2))
            depth = len(found.group(1))
    return ".".join(reversed(names)) or "top level"


def student_copy(text, lab_number=0):
    """The lab's source with its solutions taken out (see the module docstring).
    Raises ValueError naming the line on unbalanced markers."""
    out, inside, exercise, blocks, markdown = [], None, 0, 0, False
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
        found = EXERCISE.match(line)
        exercise = int(found.group(1)) if found else exercise
        begin = BEGIN.match(line)
        if begin:
            if inside is not None:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside the block opened on line {inside}")
            inside, blocks = number, blocks + 1
            indent = begin.group(1)
            if markdown:
                out.append(f"{indent}# *(your answer here)*\n")
            else:
                label = f"exercise {lab_number}.{exercise or blocks} ({_enclosing_name(out, indent)})"
                out.append(f'{indent}raise NotImplementedError("{label}")\n')
        elif END.match(line):
            if inside is None:
                raise ValueError(f"line {number}: END SOLUTION without a BEGIN")
            inside = None
        elif inside is None:
            out.append(SOLUTION_COMMENT.sub("", line.rstrip("\n")) + "\n" if "# [solution]" in line else line)
    if inside is not None:
        raise ValueError(f"BEGIN SOLUTION on line {inside} is never closed")
    return "".join(out)


def lab_files(paths):
    """The lab files named, a folder standing for its NN_*.py labs; raises ValueError on anything else."""
    labs = []
    for path in map(Path, paths):
        found = sorted(p for p in path.glob("*.py") if LAB_FILE.match(p.name)) if path.is_dir() else [path]
        for lab in found:
            if not (lab.is_file() and LAB_FILE.match(lab.name)):
                raise ValueError(f"student: expected a lab file NN_name.py or a folder of them, got {lab}")
        if not found:
            raise ValueError(f"student: no lab files (NN_name.py) in {path}")
        labs += found
    return labs


def write_student_copies(paths, out):
    """Write the student copy of every lab in ``paths`` and the labcheck.py beside them into folder ``out``;
    returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lab in lab_files(paths):
        atomic_write_text(out / lab.name, student_copy(lab.read_text(encoding="utf-8"), int(lab.name[:2])))
        written.append(out / lab.name)
        labcheck = lab.parent / "labcheck.py"          # the checks the copies import, beside them
        if labcheck.is_file() and lab.parent.resolve() != out.resolve():
            shutil.copyfile(labcheck, out / "labcheck.py")
    return written


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minitorch_cnn.lab.student", description=__doc__.split("\n")[0])
    p.add_argument("labs", nargs="+", help="lab files (NN_name.py) or folders of them (docs/labs)")
    p.add_argument("-o", "--out", required=True, help="output folder (created), e.g. student/")
    args = p.parse_args(argv)
    try:
        written = write_student_copies(args.labs, args.out)
    except (ValueError, OSError) as err:
        print(err, file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"run one with: python {written[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
