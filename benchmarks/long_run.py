"""A long run's memory and the time it spends writing: peak RSS along the way, and the share of the run's time spent
streaming records and writing checkpoints.

    .venv/bin/python benchmarks/long_run.py [--steps 100000] [--checkpoint-every 100] [--width 2] [--out FILE]

Two runs of the same spec (digits, batch 32 on 128 samples, λ = 0.01, η = 1): one with a checkpoint every
``--checkpoint-every`` steps, one without. The first reports its peak RSS at every tenth of the run and the time
spent inside the writers (records appended, the stream made durable, checkpoints, config and evaluations); both
report their wall time.

Writes ``benchmarks/results/long_run.json`` (``_results``): per run the wall time and the seconds in each writer
(``runs``), and the peak RSS after each tenth (``peak RSS``); the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from _results import add_out_option, write_results

import bnwd.empirical.checkpoints
import bnwd.empirical.record_stream
import bnwd.empirical.trainer
from bnwd.empirical.runs import RunSpec, build_trainer


def timed(module, name: str, spent: dict):
    """Wrap ``module.name`` so that the seconds spent in it add up in ``spent[name]``."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--width", type=int, default=2)
    add_out_option(parser, "long_run")
    args = parser.parse_args()
    tables = {"runs": [], "peak RSS": []}
    spec = RunSpec(width=args.width, train_subset=128, batch_size=32, lr=1.0, wd=0.01, steps=args.steps, device="cpu")
    spent: dict[str, float] = {}
    for name in ("append_jsonl", "make_durable"):  # records appended; the stream made durable before a checkpoint
        timed(bnwd.empirical.record_stream, name, spent)
    for name in ("save_checkpoint", "write_json", "write_jsonl"):
        timed(bnwd.empirical.trainer, name, spent)
    for every in (args.checkpoint_every, 0):
        with tempfile.TemporaryDirectory() as folder:
            trainer = build_trainer(spec.replace(checkpoint_every=every), Path(folder))
            marks = {round(args.steps * k / 10) for k in range(1, 11)}
            rss = {}

            def note(step: int, marks=marks, rss=rss) -> None:
                if step + 1 in marks:
                    rss[step + 1] = peak_rss_mb()

            spent.clear()
            start = time.perf_counter()
            trainer.run(progress=False, after_step=note)
            wall = time.perf_counter() - start
        writing = sum(spent.values())
        print(
            f"checkpoint every {every or 'never':>5}: {args.steps} steps in {wall:.1f} s; writing "
            f"{writing:.2f} s ({100 * writing / wall:.2f} % of the run: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(spent.items()))
            + ")"
        )
        print("  peak RSS (MB) after step: " + ", ".join(f"{s}: {m:.0f}" for s, m in sorted(rss.items())))
        checkpoints = {"checkpoint_every": every or "never"}
        tables["runs"].append(
            checkpoints
            | {"steps": args.steps, "wall_s": wall, "writing_s": writing, "writing_share": writing / wall}
            | {f"{k}_s": v for k, v in sorted(spent.items())}
        )
        tables["peak RSS"] += [checkpoints | {"step": s, "peak_rss_mb": m} for s, m in sorted(rss.items())]
    write_results(args.out, "long_run", tables)


if __name__ == "__main__":
    main()
