"""What every paper check shares: its verdict record, the context it runs in, and its registry.

A check is a module ``paper_checks/cN_<name>.py`` defining

- ``CLAIM`` (``"C1"`` …), ``TITLE`` (one line: the claim in words),
- ``SETTINGS``: a dict ``{"tiny": {...}, "small": {...}, "paper": {...}}`` of the sizes it runs at (``tiny``: the
  tests, seconds; ``small``: ``bnwd check`` on 2 CPU cores, minutes; ``paper``: the paper's setting, a GPU),
- ``run(ctx: CheckContext, settings: dict) -> Verdict``: measure, decide against the tolerances stated in
  ``settings`` (and in the verdict), draw its figure into ``ctx.out``.

Runs go through :meth:`CheckContext.train`, which keeps each run in ``<out>/runs/<run_id>/``: checks that ask for
the same :class:`~empirical.runs.RunSpec` share one run, and a second ``bnwd check`` on the same folder trains
nothing it has already trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from empirical.runs import MeasuredRun, RunSpec, read_run, run_id, train_run

SCALES = ("tiny", "small", "paper")


@dataclass
class Verdict:
    """The outcome of one check.

    ``numbers`` holds what was measured (plain JSON values), ``tolerance`` the thresholds the verdict compared them
    with, ``summary`` one line that states the comparison with its numbers, ``figure`` the PNG's path (relative to
    the output folder).
    """

    claim: str
    title: str
    passed: bool
    summary: str
    numbers: dict
    tolerance: dict
    figure: str | None = None
    seconds: float = 0.0
    runs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "claim": self.claim,
            "title": self.title,
            "passed": bool(self.passed),
            "summary": self.summary,
            "numbers": self.numbers,
            "tolerance": self.tolerance,
            "figure": self.figure,
            "seconds": round(self.seconds, 2),
            "runs": self.runs,
        }


@dataclass
class Run(MeasuredRun):
    """A finished training run of a check: its folder read back (:class:`~empirical.runs.MeasuredRun`: config,
    records, the per-step series in the shared schema, evaluations, the summary row with its ``events``,
    ``periods``, ``regime`` …), with the spec that made it and its id."""

    spec: RunSpec
    id: str


@dataclass
class CheckContext:
    """Where a check writes (``out``) and how it trains: ``device`` and ``dtype`` for every run it asks for,
    ``data``/``data_dir`` overriding the data of the settings, ``progress`` for the bars."""

    out: Path
    scale: str = "small"
    device: str = "auto"
    data: str | None = None
    data_dir: str | None = None
    progress: bool = False
    trained: list[str] = field(default_factory=list)

    def spec(self, **values) -> RunSpec:
        """A :class:`RunSpec` from ``values`` with this context's device and data choices applied."""
        if self.data is not None:
            values["data"] = self.data
        if self.data_dir is not None:
            values["data_dir"] = self.data_dir
        return RunSpec(device=self.device, **values)

    def train(self, spec: RunSpec) -> Run:
        """Train ``spec`` (or read it back if this folder already has it) and return the finished :class:`Run`."""
        rid = run_id(spec)
        path = Path(self.out) / "runs" / rid
        train_run(spec, path, progress=self.progress)
        self.trained.append(rid)
        return Run(**vars(read_run(path)), spec=spec, id=rid)

    def figure_path(self, claim: str) -> Path:
        path = Path(self.out) / f"{claim.lower()}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def timed(check, ctx: CheckContext, settings: dict) -> Verdict:
    """Run ``check.run(ctx, settings)`` and stamp the verdict with its wall time and the runs it used."""
    start = time.perf_counter()
    ctx.trained = []
    verdict = check.run(ctx, settings)
    verdict.seconds = time.perf_counter() - start
    verdict.runs = sorted(set(ctx.trained))
    return verdict
