"""Gate decisions recorded after a version was published (``mlgate models evaluate``).

A version is immutable and every file in it is checked against its manifest, so a decision
made later cannot go inside it. It goes beside the versions instead, as the stage history
does: an append-only :class:`registry.journal.Journal` under ``{root}/{model}/.gates/``, one
record per evaluation. A version's gate (:attr:`registry.store.ModelVersion.gate`) is its
newest evaluation record, else the ``gate.json`` training published inside it, else none
(``ungated``). Older decisions stay in the history: a re-evaluation supersedes, never erases.
"""

from __future__ import annotations

from typing import Any

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field

from contracts.clock import Clock, wall_clock_s
from registry.journal import Journal

_DIR = ".gates"
_RECORD = "gate.json"


class GateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=1, description="Position in the model's gate history, from 1")
    model: str
    version: int = Field(ge=1, description="The version evaluated")
    decision: dict[str, Any] = Field(description="The gate's record (training.gate.decide): passed, reasons, "
                                     "checks, compared_with, config")
    dataset: dict[str, Any] = Field(description="The dataset version evaluated on: name, version, fingerprint")
    actor: str = Field(description="Who ran the evaluation (the credential's identity name)")
    actor_id: str | None = Field(default=None, description="The stable id of that identity, when there is one")
    at: float = Field(description="Unix time of the decision")

    def gate(self) -> dict[str, Any]:
        """The decision as :attr:`ModelVersion.gate` gives it, saying where it came from."""
        return {**self.decision, "source": "evaluation", "seq": self.seq, "dataset": self.dataset,
                "actor": self.actor, "at": self.at}


class GateBook:
    """The gate records of the models under one registry root."""

    def __init__(self, fs: pafs.FileSystem, root_path: str, clock: Clock = wall_clock_s) -> None:
        self.journal = Journal(fs, root_path, _DIR, GateRecord, filename=_RECORD, what="gate record")
        self.clock = clock

    def history(self, model: str) -> list[GateRecord]:
        return self.journal.history(model)

    def latest(self, model: str, version: int) -> GateRecord | None:
        """The newest record of ``version``, or None."""
        return next((r for r in reversed(self.history(model)) if r.version == version), None)

    def record(self, model: str, version: int, decision: dict[str, Any], *, dataset: dict[str, Any], actor: str,
               actor_id: str | None = None) -> GateRecord:
        def make(seq: int, _history: list[GateRecord]) -> GateRecord:
            return GateRecord(seq=seq, model=model, version=version, decision=decision, dataset=dataset,
                              actor=actor, actor_id=actor_id, at=self.clock())

        return self.journal.commit(model, make)
