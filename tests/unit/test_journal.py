"""The journal: an append-only, atomically committed sequence of records per model, with
optimistic concurrency (a writer that loses the race decides again)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow.fs as pafs
import pytest
from pydantic import BaseModel, ConfigDict

from contracts.errors import Conflict, InvalidInput
from registry.journal import Journal


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int
    writer: str
    seen: int  # how many records the writer saw when it decided


def _journal(root, **kwargs) -> Journal[Note]:
    return Journal(pafs.LocalFileSystem(), str(root), ".notes", Note, **kwargs)


def _note(writer: str):
    return lambda seq, history: Note(seq=seq, writer=writer, seen=len(history))


def test_an_empty_journal(tmp_path):
    journal = _journal(tmp_path)
    assert journal.history("m") == [] and journal.latest_seq("m") == 0 and journal.last("m") is None


def test_records_are_numbered_in_order_and_read_back(tmp_path):
    journal = _journal(tmp_path)
    for writer in "abc":
        journal.commit("m", _note(writer))
    assert [(n.seq, n.writer, n.seen) for n in journal.history("m")] == [(1, "a", 0), (2, "b", 1), (3, "c", 2)]
    assert journal.latest_seq("m") == 3 and journal.last("m").writer == "c"
    assert (tmp_path / "m" / ".notes" / "00000002" / "event.json").is_file()
    assert _journal(tmp_path).history("other") == []  # per model


def test_the_directory_and_file_names_are_the_callers(tmp_path):
    journal = Journal(pafs.LocalFileSystem(), str(tmp_path), ".other", Note, filename="note.json")
    journal.commit("m", _note("a"))
    assert (tmp_path / "m" / ".other" / "00000001" / "note.json").is_file()
    assert _journal(tmp_path).history("m") == []


def test_a_writer_that_loses_the_race_decides_again(tmp_path):
    journal, other = _journal(tmp_path), _journal(tmp_path)
    seen = []

    def make(seq, history):
        seen.append(seq)
        if len(seen) == 1:  # the other writer commits while this one decides
            other.commit("m", _note("other"))
        return Note(seq=seq, writer="me", seen=len(history))

    note = journal.commit("m", make)
    assert seen == [1, 2] and (note.seq, note.seen) == (2, 1)
    assert [n.writer for n in journal.history("m")] == ["other", "me"]


def test_two_concurrent_writers_both_land_with_distinct_seqs(tmp_path):
    n = 25
    start = threading.Barrier(2)

    def write(writer: str) -> list[int]:
        journal = _journal(tmp_path)
        start.wait()
        return [journal.commit("m", _note(writer)).seq for _ in range(n)]

    with ThreadPoolExecutor(2) as pool:
        seqs = list(pool.map(write, ["a", "b"]))
    history = _journal(tmp_path).history("m")
    assert sorted(seqs[0] + seqs[1]) == list(range(1, 2 * n + 1))
    assert [x.seq for x in history] == list(range(1, 2 * n + 1))
    assert all(x.seen == x.seq - 1 for x in history)  # each decided on every record before it
    assert sorted(x.writer for x in history) == ["a"] * n + ["b"] * n
    assert not [p for p in (tmp_path / "m" / ".notes").iterdir() if not p.name.isdigit()]  # no staging left


def test_a_refusal_writes_nothing(tmp_path):
    journal = _journal(tmp_path)

    def refuse(seq, history):
        raise Conflict("no")

    with pytest.raises(Conflict):
        journal.commit("m", refuse)
    assert journal.latest_seq("m") == 0


def test_too_many_competing_writers_is_a_conflict(tmp_path):
    journal, other = _journal(tmp_path, what="note"), _journal(tmp_path)

    def always_beaten(seq, history):
        other.commit("m", _note("other"))
        return Note(seq=seq, writer="me", seen=len(history))

    with pytest.raises(Conflict, match="note of 'm': too many concurrent writers"):
        journal.commit("m", always_beaten)
    assert {n.writer for n in journal.history("m")} == {"other"}


def test_a_record_with_the_wrong_seq_is_refused(tmp_path):
    with pytest.raises(ValueError, match="seq 5, expected 1"):
        _journal(tmp_path).commit("m", lambda seq, history: Note(seq=5, writer="x", seen=0))


def test_a_numbered_directory_without_its_record_is_not_a_record(tmp_path):
    """On object stores the directory comes first and the record last."""
    journal = _journal(tmp_path)
    journal.commit("m", _note("a"))
    (tmp_path / "m" / ".notes" / "00000002").mkdir()
    assert journal.latest_seq("m") == 1 and [n.seq for n in journal.history("m")] == [1]


def test_model_names_are_checked(tmp_path):
    with pytest.raises(InvalidInput, match="model name"):
        _journal(tmp_path).history("../x")
