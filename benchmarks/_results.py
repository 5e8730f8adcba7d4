"""Where a benchmark's numbers go: one JSON file per run, with the command, the date and the machine that made them.

Every benchmark takes ``--out`` (:func:`add_out_option`; default ``benchmarks/results/<benchmark>.json``) and ends
with :func:`write_results`; ``benchmarks/results_page.py`` turns the files into ``docs/results.md``. A results
file::

    {"benchmark": "detection_band",
     "command": "benchmarks/detection_band.py --configs 8",
     "date": "2026-12-08T10:31:02+00:00",
     "machine": {"cpu_count": 2, "torch": "2.13.0", "device": "cpu", "platform": "Linux-…", "python": "3.12.3"},
     "tables": {"timing": [{"configs": 8, "seconds_with_band": 0.11}, …]}}

``tables`` maps a title to its rows, each a dict of column → number or text (NaN is written as ``null``).

A shell script records its own numbers with the command line of this file (one row, values as given)::

    python benchmarks/_results.py OUT BENCHMARK --command "…" [--device cuda] KEY=VALUE …
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""The folder of the results files that ``docs/results.md`` is made from."""


def add_out_option(parser: argparse.ArgumentParser, benchmark: str) -> None:
    """``--out FILE``: where the results of ``benchmark`` go (default ``RESULTS_DIR/<benchmark>.json``)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / f"{benchmark}.json",
        help="results file, JSON with the command, date and machine (default: %(default)s)",
    )


def machine(device: str = "cpu") -> dict:
    """The CPU count, torch's version (and threads, once imported), the device the numbers were measured on."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    found = {"cpu_count": os.cpu_count(), "torch": torch_version, "device": device}
    torch = sys.modules.get("torch") or (importlib.import_module("torch") if device.startswith("cuda") else None)
    if torch is not None:
        found["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            found["device"] = f"{device} ({torch.cuda.get_device_name()})"
    return found | {"platform": platform.platform(), "python": platform.python_version()}


def _plain(value):
    """``value`` as JSON can hold it: numpy scalars as Python numbers, tuples as lists, NaN and ±inf as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy and torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(
    path: Path, benchmark: str, tables: dict[str, list[dict]], device: str = "cpu", command: str | None = None
) -> Path:
    """Write ``tables`` to ``path`` with this process's command line (or ``command``), the date and the machine."""
    record = {
        "benchmark": benchmark,
        "command": command if command is not None else shlex.join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device),
        "tables": _plain(tables),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {path}")
    return path


def _number_or_text(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description="Record one row of a shell script's results.")
    parser.add_argument("out", type=Path, help="results file to write")
    parser.add_argument("benchmark", help="the script that measured them")
    parser.add_argument("--command", required=True, help="the script's command line")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("values", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args()
    row = {key: _number_or_text(value) for key, _, value in (item.partition("=") for item in args.values)}
    write_results(args.out, args.benchmark, {"results": [row]}, device=args.device, command=args.command)


if __name__ == "__main__":
    main()
