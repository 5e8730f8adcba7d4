"""Kill a training run at random points, resume it, and compare its files with the uninterrupted run's, byte for byte.

    .venv/bin/python benchmarks/kill_resume.py [--trials 24] [--steps 300] [--seed 0] [--out FILE]

Each trial trains a small run (digits, width 4, batch 64, checkpoints every 7 steps, records streamed in chunks) in
a child process and stops it by one of four faults, drawn in turn, at a random point: ``kill`` (SIGKILL from
outside after a random time), ``chunk`` (the process dies halfway through appending a chunk of records),
``checkpoint`` (the new checkpoint lands cut in half, as if the disk lost its tail, and the process dies) and
``rename`` (it dies between moving the old checkpoint aside and renaming the new one into place). Then
``--resume`` runs to the end, and ``series.jsonl``, ``eval.jsonl`` and ``summary.json`` must equal the
uninterrupted run's.

Writes ``benchmarks/results/kill_resume.json`` (``_results``): per fault the trials, how many were interrupted and
how many resumed to identical files; the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAULTS = ("kill", "chunk", "checkpoint", "rename")
FILES = ("series.jsonl", "eval.jsonl", "summary.json")

# The child: train (resuming if there is a checkpoint) with a fault armed at the n-th call of a write.
CHILD = """
import os, sys
from pathlib import Path
import bnwd.empirical.checkpoints, bnwd.empirical.record_stream
from bnwd.empirical.runs import RunSpec, build_trainer

out, steps, fault, nth = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = {"n": 0}

def armed():
    calls["n"] += 1
    return calls["n"] == nth

if fault == "chunk":
    append = bnwd.empirical.record_stream.append_jsonl
    def append_then_die(path, records, offset):
        if armed():
            with open(path, "r+b" if Path(path).exists() else "wb") as f:
                f.seek(offset); f.truncate(); f.write(b'{"step": 1, "lo')
            os._exit(3)
        return append(path, records, offset)
    bnwd.empirical.record_stream.append_jsonl = append_then_die
elif fault in ("checkpoint", "rename"):
    replace = os.replace
    target = "checkpoint.pt" if fault == "checkpoint" else "checkpoint.prev.pt"
    def replace_then_die(src, dst):
        if Path(dst).name == target and armed():
            if fault == "checkpoint":  # the new checkpoint lands cut in half (a lost tail)
                data = Path(src).read_bytes()
                Path(src).write_bytes(data[: len(data) // 2])
            replace(src, dst)  # "rename": the old one moved aside, the new one never put in place
            os._exit(3)
        return replace(src, dst)
    bnwd.empirical.checkpoints.os.replace = replace_then_die

spec = RunSpec(width=4, train_subset=256, batch_size=64, lr=1.0, wd=0.01, steps=steps, checkpoint_every=7,
               eval_points=6, device="cpu")
trainer = build_trainer(spec, out)
trainer.resume()
trainer.run(progress=False)
"""


def child(out: Path, steps: int, fault: str = "none", nth: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, str(out), str(steps), fault, str(nth)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> int:
    _, err = process.communicate()
    if process.returncode not in (0, 3, -signal.SIGKILL):
        raise RuntimeError(err.decode())
    return process.returncode


def trial(reference: Path, work: Path, steps: int, fault: str, rng: random.Random, seconds: float) -> dict:
    """One interrupted run resumed to the end; whether each file equals the reference's."""
    shutil.rmtree(work, ignore_errors=True)
    if fault == "kill":
        process = child(work, steps)
        time.sleep(rng.uniform(0.2, 1.0) * seconds)
        process.send_signal(signal.SIGKILL)
        code = finish(process)
    else:
        code = finish(child(work, steps, fault, rng.randint(1, steps // 7)))
    interrupted = code != 0
    finish(child(work, steps))
    same = {name: (work / name).read_bytes() == (reference / name).read_bytes() for name in FILES}
    return {"fault": fault, "interrupted": interrupted, **same}


def run_trials(trials: int, steps: int, seed: int, folder: Path) -> list[dict]:
    """``trials`` interrupted runs against one uninterrupted run of ``steps`` steps, in ``folder``."""
    rng = random.Random(seed)
    reference = folder / "reference"
    start = time.perf_counter()
    finish(child(reference, steps))
    seconds = time.perf_counter() - start
    return [trial(reference, folder / f"trial{i}", steps, FAULTS[i % len(FAULTS)], rng, seconds) for i in range(trials)]


def tally(results: list[dict]) -> dict:
    """How many of ``results`` there are, were interrupted, and resumed to files identical to the reference's."""
    return {
        "trials": len(results),
        "interrupted": sum(r["interrupted"] for r in results),
        "identical": sum(all(r[name] for name in FILES) for r in results),
    }


def main() -> None:
    # here, not at the top: the tests run this file with runpy, where benchmarks/ is not on the import path
    from _results import add_out_option, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    add_out_option(parser, "kill_resume")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = run_trials(args.trials, args.steps, args.seed, Path(folder))
    rows = [{"fault": fault} | tally([r for r in results if r["fault"] == fault]) for fault in FAULTS]
    for row in rows:
        print(
            f"{row['fault']:>10}: {row['trials']} trials, {row['interrupted']} interrupted, "
            f"{row['identical']} resumed to identical files"
        )
    total = {"fault": "all"} | tally(results)
    print(f"all: {total['identical']} of {total['trials']} identical to the uninterrupted run byte for byte")
    write_results(args.out, "kill_resume", {"trials": [*rows, total]})


if __name__ == "__main__":
    main()
