"""A run's per-step records on their way out of memory: kept while they may still change, then appended to
``series.jsonl`` in chunks, so that memory stays flat however long the run.

A record may change after it reached the host while the sharpness schedule can still measure at its step (the
measurement is written into it), so :class:`RecordStream` keeps the latest ``keep`` records in memory and appends the
ones before them once there are at least :data:`STREAM_CHUNK`. Its position in the file (records and bytes) is what a
checkpoint needs: on resume the file is cut back to it, which removes whatever a run killed after the checkpoint
wrote, a chunk cut short included.
"""

from __future__ import annotations

import os
from pathlib import Path

from bnwd.analysis.records import append_jsonl, current_record, make_durable, read_jsonl

__all__ = ["STREAM_CHUNK", "RecordStream"]

STREAM_CHUNK = 256
"""Records appended to ``series.jsonl`` at a time, at least, while a run goes on."""


class RecordStream:
    """The per-step records of a run, the latest in memory and the others in a JSON-lines file.

    Parameters
    ----------
    path : Path or None
        The file the records are appended to (``series.jsonl``); None keeps every record in memory.
    keep : int
        How many of the latest records stay in memory when a chunk goes out (those still open to change).

    Attributes
    ----------
    in_memory : list of dict
        The records not yet in the file, one per step, in step order.
    written : int
        Records in the file.
    offset : int
        Bytes in the file.
    """

    def __init__(self, path: Path | None, keep: int) -> None:
        self.path, self.keep = path, keep
        self.in_memory: list[dict] = []
        self.written, self.offset = 0, 0

    def record(self, step: int) -> dict | None:
        """The record of ``step`` if it is still in memory, else None."""
        index = step - self.in_memory[0]["step"] if self.in_memory else -1
        return self.in_memory[index] if 0 <= index < len(self.in_memory) else None

    def extend(self, records: list[dict]) -> None:
        """Add the records of the next steps, in step order."""
        self.in_memory.extend(records)

    def stream_chunk(self) -> None:
        """Append the records before the latest ``keep`` to the file once there are :data:`STREAM_CHUNK` of them."""
        if len(self.in_memory) - self.keep >= STREAM_CHUNK:
            self.stream_out()

    def stream_out(self, everything: bool = False) -> None:
        """Append the records before the latest ``keep`` (``everything``: all of them) to the file."""
        n = len(self.in_memory) - (0 if everything else self.keep)
        if self.path is None or n <= 0:
            return
        self.offset = append_jsonl(self.path, self.in_memory[:n], self.offset)
        self.in_memory, self.written = self.in_memory[n:], self.written + n

    def records(self) -> list[dict]:
        """Every record so far: those in the file read back, then those in memory."""
        streamed = read_jsonl(self.path)[: self.written] if self.written else []
        return streamed + self.in_memory

    def state_dict(self) -> dict:
        """The position in the file (``written`` records, ``offset`` bytes; the file made durable first) and the
        ``records`` still in memory, after the records before the latest ``keep`` went out."""
        self.stream_out()
        if self.path is not None and self.path.exists():
            make_durable(self.path)
        return {"written": self.written, "offset": self.offset, "records": self.in_memory}

    def load_state_dict(self, state: dict) -> None:
        """Go on from :meth:`state_dict`'s ``state``: the file is cut back to the length it had then. ``ValueError``
        if it is shorter than that."""
        if self.path is not None:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size < state["offset"]:
                raise ValueError(
                    f"{self.path} holds {size} bytes, fewer than the {state['offset']} of the checkpoint: "
                    "the records are damaged; start the run again in a new folder"
                )
            os.truncate(self.path, state["offset"])
        self.written, self.offset = state["written"], state["offset"]
        self.in_memory = [current_record(r) for r in state["records"]]
