"""Three real runs labelled independently (tests/data/labelled_runs: ConvNetSI on digits), as the tests read them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELLED = Path(__file__).parent / "data" / "labelled_runs"


def labelled_runs():
    """Per run: its name, its entry of labels.json (``run``: the run's fields; ``labels``) and its series by name."""
    meta = json.loads((LABELLED / "labels.json").read_text(encoding="utf-8"))["runs"]
    for name, entry in meta.items():
        table = np.genfromtxt(LABELLED / f"{name}.csv.gz", delimiter=",", names=True)
        yield name, entry, {k: table[k] for k in table.dtype.names if k != "step"}
