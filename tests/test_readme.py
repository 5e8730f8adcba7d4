"""The README's quoted outputs are what their commands print.

A quoted output is a fenced block whose first line is ``$ COMMAND``; the line before it, ``<!-- output: COMMAND -->``,
marks it for this test, which runs COMMAND from the repository root and compares. A line ``…`` in a block stands
for any number of lines left out; every other line must come out as quoted, in order, those between two ``…`` one
after the other. Leading ``NAME=value`` words of a command are its environment (``OMP_NUM_THREADS=1`` pins the
threads, on which the numbers of a periodic run depend), ``.venv/bin/python`` is this interpreter and
``.venv/bin/bnwd`` the ``bnwd`` command of this checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GAP = "…"
_QUOTED = re.compile(
    r"(?:<!-- output: (?P<marked>[^\n]+?) -->\n)?```\n\$ (?P<command>[^\n]+)\n(?P<output>.*?)```", re.S
)
_PROGRAMS = {".venv/bin/python": [sys.executable], ".venv/bin/bnwd": [sys.executable, "-m", "bnwd.paper_checks.cli"]}


def quoted_outputs(text: str) -> list[tuple[str | None, str, list[str]]]:
    """Each quoted output block of ``text``: the command its marker names (None when unmarked), the command its
    ``$`` line shows, and its output lines."""
    return [(m["marked"], m["command"], m["output"].splitlines()) for m in _QUOTED.finditer(text)]


def matches(quoted: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` holds the ``quoted`` lines as the module docstring says (``…``: lines left out)."""
    chunks = [[]]
    for line in quoted:
        if line.strip() == GAP:
            chunks.append([])
        else:
            chunks[-1].append(line.rstrip())
    printed = [line.rstrip() for line in printed]
    if len(chunks) == 1:
        return printed == chunks[0]
    first, *middle, last = chunks
    if printed[: len(first)] != first:
        return False
    position = len(first)
    for chunk in middle:
        starts = range(position, len(printed) - len(chunk) + 1)
        found = next((i for i in starts if printed[i : i + len(chunk)] == chunk), None)
        if found is None:
            return False
        position = found + len(chunk)
    end = len(printed) - len(last)
    return end >= position and printed[end:] == last


def run(command: str) -> list[str]:
    """Run a README command from the repository root; its standard output's lines."""
    words = shlex.split(command)
    env = dict(os.environ)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    argv = _PROGRAMS.get(words[0], [words[0]]) + words[1:]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


BLOCKS = quoted_outputs(README.read_text(encoding="utf-8"))


def test_every_quoted_output_is_marked_with_the_command_it_shows():
    assert BLOCKS, "the README quotes no output: the pattern no longer finds its blocks"
    for marked, shown, _ in BLOCKS:
        assert marked == shown, f"quoted output of `{shown}` marked as `{marked}`"


@pytest.mark.slow
@pytest.mark.parametrize(("command", "quoted"), [pytest.param(shown, output, id=shown) for _, shown, output in BLOCKS])
def test_quoted_output_is_what_the_command_prints(command, quoted):
    printed = run(command)
    assert matches(quoted, printed), "\n".join(["printed:", *printed, "quoted:", *quoted])


@pytest.mark.parametrize(
    ("quoted", "printed", "expected"),
    [
        (["a", "b"], ["a", "b"], True),
        (["a", "b"], ["a", "b", "c"], False),  # an unquoted line at the end
        (["a", "c"], ["a", "b", "c"], False),
        (["a", GAP, "c"], ["a", "b", "c"], True),
        ([GAP, "b", GAP], ["a", "b", "c"], True),
        ([GAP, "b", "c"], ["a", "b", "c"], True),
        ([GAP, "c", "b"], ["a", "b", "c"], False),  # out of order
        ([GAP, "b", GAP, "a"], ["a", "b", "c"], False),
        (["x"], ["a"], False),  # a number that drifted
    ],
)
def test_matches_follows_the_gap_rule(quoted, printed, expected):
    assert matches(quoted, printed) is expected
