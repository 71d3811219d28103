"""What a run sends to its scorers, and what they send back: plain data, no torch."""

from __future__ import annotations

from dataclasses import dataclass

from batch.source import Source


@dataclass(frozen=True)
class ScoreJob:
    """What any scorer of a run needs; plain data, sent once to each actor."""

    registry_root: str
    model: str
    version: int
    source: Source
    dest: str  # output root: a local path or a pyarrow URI
    keys: tuple[str, ...]  # key columns of the output parts
    reject_keys: tuple[str, ...]  # key columns of the rejects files (the keys plus _file/_row)
    batch_size: int
    rows_per_group: int
    csv_block_bytes: int
    device: str = "cpu"


@dataclass
class FragmentResult:
    part: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    ready_at: float = 0.0  # unix time its scorer had the model loaded
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""  # empty: the part was written
    pid: int = 0
    max_rss_bytes: int = 0  # peak resident memory of the scoring process so far
    cpu_seconds: float = 0.0  # CPU time of the scoring process on this fragment (all its threads)
    ready_cpu_seconds: float = 0.0  # CPU time the scoring process spent before it was ready (imports, model)
