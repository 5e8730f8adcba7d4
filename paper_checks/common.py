"""What every paper check shares: its verdict record, the context it runs in, and its registry.

A check is a module ``paper_checks/cN_<name>.py`` defining

- ``CLAIM`` (``"C1"`` …), ``TITLE`` (one line: the claim in words),
- ``SETTINGS``: a dict ``{"tiny": {...}, "small": {...}, "paper": {...}}`` of the sizes it runs at (``tiny``: the
  tests, seconds; ``small``: ``bnwd check`` on 2 CPU cores, minutes; ``paper``: the paper's setting, a GPU),
- ``run(ctx: CheckContext, settings: dict) -> Verdict``: measure, decide against the tolerances stated in
  ``settings`` (and in the verdict), draw its figure at ``ctx.figure_path(CLAIM)``;
- ``plan(settings: dict) -> list[PlannedRun]``: every run ``run`` will train at those settings, before it trains
  (``bnwd check --plan``; a test holds each check to it at the tiny scale);
- optionally ``DETECTOR_BAND``: a sentence saying why the verdict is not recomputed across the detector's
  sensitivity band (a check that detects nothing, or one whose every setting would cost a new run). Every other
  check runs once per setting of :data:`analysis.destabilization.SENSITIVITY_BAND` (its runs' summaries at that
  setting); a verdict that passes at some settings and fails at others is *fragile* and does not pass;
- optionally ``HEADLINE``: the keys of ``numbers`` whose min–max over the band the summary states.

Runs go through :meth:`CheckContext.train`, which keeps each run in ``<out>/runs/<run_id>/``: checks that ask for
the same :class:`~empirical.runs.RunSpec` share one run, and a second ``bnwd check`` on the same folder trains
nothing it has already trained and resumes an interrupted run from its last checkpoint (:data:`CHECKPOINT_EVERY`).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bnwd.analysis.destabilization import DEFAULT_SETTINGS, SENSITIVITY_BAND, DetectorSettings
from bnwd.analysis.summary import summarize_records
from bnwd.empirical.runs import MeasuredRun, RunSpec, read_run, run_id, train_run, train_runs

__all__ = ["CHECKPOINT_EVERY", "SCALES", "CheckContext", "PlannedRun", "Run", "Verdict", "timed"]

SCALES = ("tiny", "small", "paper")

CHECKPOINT_EVERY = {"tiny": 50, "small": 1000, "paper": 3910}
"""Steps between the checkpoints of a check's runs at each scale: a ``bnwd check`` stopped by a crash resumes each
unfinished run from its last one (paper: every 10 CIFAR epochs, seconds of a GPU's time; tiny: often enough for the
tests to go through the checkpoint path)."""


@dataclass(frozen=True)
class PlannedRun:
    """One run a check will train, named before it trains.

    ``role`` says what the check uses it for; ``values`` are its :class:`~empirical.runs.RunSpec` fields as the
    settings give them (the context's device and data applied later); ``derived`` maps each field that only an
    earlier run decides to how it is found (e.g. ``{"fix_norm": "the median ρ of the free run"}``): such a run has
    no id until then, and its ``values`` hold what is known (for ``steps``, an upper bound).
    """

    role: str
    values: dict
    derived: dict = field(default_factory=dict)


@dataclass
class Verdict:
    """The outcome of one check.

    ``numbers`` holds what was measured (plain JSON values), ``tolerance`` the thresholds the verdict compared them
    with, ``summary`` one line that states the comparison with its numbers, ``figure`` the PNG's path (relative to
    the output folder). ``detector_band`` maps each setting of the detector's band to whether the check passed
    there and its numbers' scalars (or says why it was not evaluated); ``fragile`` is True when the settings
    disagree.
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
    detector_band: dict | str = field(default_factory=dict)
    fragile: bool = False

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
            "detector_band": self.detector_band,
            "fragile": self.fragile,
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
    ``data``/``data_dir`` overriding the data of the settings, ``progress`` for the bars; ``detector`` the
    settings the runs' summaries are computed with, ``figures`` where figures go (default ``out``), ``together`` the
    most runs of one architecture trained as one computation (:meth:`train_many`; 1: one at a time)."""

    out: Path
    scale: str = "small"
    device: str = "auto"
    data: str | None = None
    data_dir: str | None = None
    progress: bool = False
    trained: list[str] = field(default_factory=list)
    detector: DetectorSettings = DEFAULT_SETTINGS
    figures: Path | None = None
    together: int = 8
    # finished runs read once (at the default settings), shared by the contexts of a check's band
    read: dict = field(default_factory=dict, repr=False)

    def spec(self, **values) -> RunSpec:
        """A :class:`RunSpec` from ``values`` with this context's device and data choices applied, checkpointing
        every :data:`CHECKPOINT_EVERY` steps of its scale unless ``values`` say otherwise."""
        values.setdefault("checkpoint_every", CHECKPOINT_EVERY[self.scale])
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
        if path not in self.read:
            self.read[path] = read_run(path)
        found = self.read[path]
        summary = found.summary
        if self.detector != DEFAULT_SETTINGS:
            summary = summarize_records(found.config, found.records, self.detector)
        return Run(**(vars(found) | {"summary": summary}), spec=spec, id=rid)

    def train_many(self, specs: list[RunSpec]) -> list[Run]:
        """Train ``specs`` — those that can, together (:func:`empirical.runs.train_runs`, up to ``together`` at a
        time) — and return their finished :class:`Run` s in order."""
        train_runs([(spec, Path(self.out) / "runs" / run_id(spec)) for spec in specs], together=self.together,
                   progress=self.progress)  # fmt: skip
        return [self.train(spec) for spec in specs]

    def figure_path(self, claim: str) -> Path:
        path = Path(self.figures or self.out) / f"{claim.lower()}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _scalars(numbers: dict) -> dict:
    return {k: v for k, v in numbers.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def timed(check, ctx: CheckContext, settings: dict) -> Verdict:
    """Run ``check.run(ctx, settings)`` across the detector's band and stamp the verdict with its wall time, the runs
    it used and the band.

    The check runs at each setting of :data:`~analysis.destabilization.SENSITIVITY_BAND` but ``ctx.detector``
    (figures to a scratch folder; the runs are trained once), then at ``ctx.detector``, whose verdict is returned
    with ``detector_band`` (per setting: ``passed`` and the scalars of ``numbers``). The summary states the min–max
    over the band of the check's ``HEADLINE`` numbers. If the band's outcomes disagree the verdict is fragile: it
    does not pass, and its summary says where it fails.
    """
    start = time.perf_counter()
    ctx.trained = []
    band: dict | str = getattr(check, "DETECTOR_BAND", {})
    if isinstance(band, dict):
        with tempfile.TemporaryDirectory() as scratch:
            for at in SENSITIVITY_BAND:
                if at != ctx.detector:
                    found = check.run(replace(ctx, detector=at, figures=Path(scratch)), settings)
                    band[at.label()] = {"passed": bool(found.passed), "numbers": _scalars(found.numbers)}
    verdict = check.run(ctx, settings)
    if isinstance(band, dict):
        band = {ctx.detector.label(): {"passed": bool(verdict.passed), "numbers": _scalars(verdict.numbers)}} | band
        ranges = []
        for key in getattr(check, "HEADLINE", ()):
            values = [entry["numbers"].get(key) for entry in band.values()]
            values = [v for v in values if v is not None and math.isfinite(v)]
            if values:
                ranges.append(f"{key} {min(values):.4g}–{max(values):.4g}")
        if ranges:
            verdict.summary += f" [over the detector's band: {'; '.join(ranges)}]"
        failing = [label for label, entry in band.items() if not entry["passed"]]
        if failing and len(failing) < len(band):
            verdict.fragile, verdict.passed = True, False
            verdict.summary = (
                f"FRAGILE: passes at {len(band) - len(failing)}/{len(band)} detector settings, fails at "
                f"{'; '.join(failing)}. {verdict.summary}"
            )
    verdict.detector_band = band
    verdict.seconds = time.perf_counter() - start
    verdict.runs = sorted(set(ctx.trained))
    return verdict
