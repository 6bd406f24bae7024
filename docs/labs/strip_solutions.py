"""Make the student copy of a lab: every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block becomes
``raise NotImplementedError`` at the same indentation.

    python docs/labs/strip_solutions.py docs/labs/02_convolution.py -o student/02_convolution.py
    python docs/labs/strip_solutions.py docs/labs/*.py -o student/          # a folder for many
"""
import argparse
import os
import re
import sys
from pathlib import Path

from minitorch_cnn.files import atomic_write_text

BEGIN, END = re.compile(r"^(\s*)# BEGIN SOLUTION"), re.compile(r"^\s*# END SOLUTION")


def student_copy(text):
    """The lab's source with each solution block replaced; raises ValueError on unbalanced markers."""
    out, inside = [], None
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside is not None:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside the block opened on line {inside}")
            inside = number
            out.append(f"{begin.group(1)}raise NotImplementedError(\"exercise: write this part\")\n")
        elif END.match(line):
            if inside is None:
                raise ValueError(f"line {number}: END SOLUTION without a BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"BEGIN SOLUTION on line {inside} is never closed")
    return "".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("labs", nargs="+")
    p.add_argument("-o", "--out", required=True, help="output file (one lab) or folder")
    args = p.parse_args(argv)
    out = Path(args.out)
    many = len(args.labs) > 1 or out.is_dir() or args.out.endswith(os.sep)
    for lab in map(Path, args.labs):
        target = out / lab.name if many else out
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, student_copy(lab.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
