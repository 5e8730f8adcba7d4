"""Checkpoints that survive a crash: the last two kept, each sealed by its SHA-256 digest, read as weights only.

A checkpoint is ``torch.save`` of plain values and tensors followed by the 32-byte SHA-256 of those bytes. It is
written to a temporary file, made durable, and renamed over ``checkpoint.pt`` after the previous one moved to
``checkpoint.prev.pt``: a kill at any point leaves at least one whole checkpoint. Reading checks the digest first
(a file cut short or changed anywhere is damaged, not silently loaded) and unpickles with ``weights_only=True``,
so a run folder from someone else cannot execute code on resume.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]

CURRENT, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"
_DIGEST = 32


def save_checkpoint(folder: str | Path, state: dict) -> Path:
    """Write ``state`` (tensors and plain values) as ``folder/checkpoint.pt``, keeping the one before as
    ``checkpoint.prev.pt``; return the path."""
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    tmp = folder / f"{CURRENT}.tmp"
    try:
        with open(tmp, "wb") as stream:
            stream.write(data + hashlib.sha256(data).digest())
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:  # a full disk or an interrupt: the checkpoints before stay, no temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    if (folder / CURRENT).exists():
        os.replace(folder / CURRENT, folder / PREVIOUS)
    os.replace(tmp, folder / CURRENT)
    return folder / CURRENT


def _read(path: Path, map_location) -> dict | None:
    """The state in ``path``; None if it is damaged (short, digest wrong, or not a weights-only pickle)."""
    data = path.read_bytes()
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if len(data) <= _DIGEST or hashlib.sha256(body).digest() != digest:
        return None
    try:
        return torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception:
        return None


def load_checkpoint(folder: str | Path, map_location=None) -> tuple[dict, Path] | None:
    """The newest whole checkpoint in ``folder`` and its path (``checkpoint.pt``, or ``checkpoint.prev.pt`` when
    that one is damaged or missing); None if there is none. ``ValueError`` naming them if every one is damaged."""
    folder = Path(folder)
    damaged = []
    for name in (CURRENT, PREVIOUS):
        path = folder / name
        if not path.exists():
            continue
        state = _read(path, map_location)
        if state is not None:
            return state, path
        damaged.append(name)
    if damaged:
        raise ValueError(f"{folder}: {' and '.join(damaged)} damaged (cut short or altered); remove them to start over")
    return None
