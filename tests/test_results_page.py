"""benchmarks/results_page.py: the page shows each results file's numbers with the command and date that made them,
names the benchmarks without one, and keeps the archive of figures removed from docstrings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args) -> None:
    subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args)], check=True, capture_output=True)


def _page(results: Path, tmp_path: Path) -> str:
    _run("results_page.py", "--results", results, "--out", tmp_path / "results.md")
    return (tmp_path / "results.md").read_text(encoding="utf-8")


def test_the_page_shows_each_files_numbers_command_and_date(tmp_path):
    results = tmp_path / "results"
    command = "benchmarks/detection_band.py --configs 8 --steps 2000"
    _run("_results.py", results / "detection_band.json", "detection_band", "--command", command, "seconds=1.2345678")
    (results / "figures_removed.md").write_text("## Figures removed\n\n- a.py: 17 %\n", encoding="utf-8")
    date = json.loads((results / "detection_band.json").read_text(encoding="utf-8"))["date"]
    page = _page(results, tmp_path)
    assert f"`{command}`, {date}" in page
    assert "| seconds |" in page and "| 1.235 |" in page
    missing = page[page.index("## Missing") :]
    assert "`kill_resume`: run `benchmarks/kill_resume.py`" in missing and "`detection_band`" not in missing
    assert page.rstrip().endswith("- a.py: 17 %")


def test_without_results_every_benchmark_is_missing(tmp_path):
    page = _page(tmp_path, tmp_path)
    scripts = [p for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("_")]
    for script in scripts:
        if script.name != "results_page.py":
            assert f"run `benchmarks/{script.name}`" in page
