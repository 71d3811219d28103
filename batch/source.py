"""Input of a batch run: Parquet or CSV files (one file, a directory, or a pyarrow URI).

Lists the files once, in a stable order, and reads one fragment (a row range of a
file) as a stream of record batches, so memory holds one batch, never a whole file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts.errors import InvalidInput

Format = Literal["parquet", "csv"]
_SUFFIXES: dict[str, Format] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}


@dataclass(frozen=True)
class InputFile:
    path: str  # on the source's filesystem
    name: str  # relative to the source root: the ``_file`` key
    size: int
    mtime_ns: int | None


@dataclass(frozen=True)
class Source:
    uri: str
    format: Format
    files: tuple[InputFile, ...]

    @property
    def fs(self) -> pafs.FileSystem:
        return rfs.resolve(self.uri)[0]


def format_of(name: str) -> Format | None:
    lower = name.lower()
    return next((fmt for suffix, fmt in _SUFFIXES.items() if lower.endswith(suffix)), None)


def open_source(uri: str, fmt: Format | None = None) -> Source:
    fs, root = rfs.resolve(uri)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise InvalidInput(f"--input: {uri} does not exist")
    if info.type == pafs.FileType.File:
        infos, base = [info], posixpath.dirname(root)
    else:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        infos, base = [i for i in infos if i.type == pafs.FileType.File and _visible(i.path, root)], root
    files = sorted((_input_file(i, base) for i in infos if fmt or format_of(i.path)), key=lambda f: f.name)
    if not files:
        raise InvalidInput(f"--input: no .parquet or .csv files in {uri}")
    formats = {fmt} if fmt else {format_of(f.path) for f in files}
    if len(formats) != 1:
        raise InvalidInput(f"--input: {uri} mixes formats {sorted(formats)}; pass --format or split it")
    return Source(uri, formats.pop(), tuple(files))


def _visible(path: str, root: str) -> bool:
    """Hidden and ``_``-prefixed files and folders (``_SUCCESS``, ``.tmp``) are not data."""
    return not any(p.startswith((".", "_")) for p in posixpath.relpath(path, root).split("/"))


def _input_file(info: pafs.FileInfo, base: str) -> InputFile:
    mtime = info.mtime_ns if info.mtime_ns is not None else None
    return InputFile(info.path, posixpath.relpath(info.path, base), int(info.size or 0), mtime)


def row_groups(fs: pafs.FileSystem, file: InputFile) -> list[int]:
    """Rows per Parquet row group."""
    meta = pq.ParquetFile(file.path, filesystem=fs).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@dataclass(frozen=True)
class ReadSpec:
    """How a scorer reads its fragments."""

    columns: tuple[str, ...] = ()  # to read (empty: all)
    text_columns: tuple[str, ...] = ()  # CSV: read as text, parsed and checked per row later
    dictionary_columns: tuple[str, ...] = ()  # Parquet: read dictionary-encoded, not as strings
    batch_size: int = 4096
    csv_block_bytes: int = 8 << 20


def read_schema(fs: pafs.FileSystem, file: InputFile, fmt: Format, spec: ReadSpec) -> pa.Schema:
    if fmt == "parquet":
        return pq.ParquetFile(file.path, filesystem=fs).schema_arrow
    with _csv_reader(fs, file, spec, all_columns=True) as reader:
        return reader.schema


def iter_fragment(fs: pafs.FileSystem, file: InputFile, fmt: Format, start: int, stop: int | None,
                  spec: ReadSpec) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``(row index in the file of the first row, batch)`` for rows ``[start, stop)``."""
    if fmt == "parquet":
        yield from _parquet_rows(fs, file, start, stop, spec)
        return
    with _csv_reader(fs, file, spec) as reader:
        pos = 0
        for rb in reader:
            for i in range(0, rb.num_rows, spec.batch_size):
                yield pos + i, rb.slice(i, spec.batch_size)
            pos += rb.num_rows


def _parquet_rows(fs, file, start, stop, spec: ReadSpec):
    pf = pq.ParquetFile(file.path, filesystem=fs, read_dictionary=list(spec.dictionary_columns) or None)
    meta = pf.metadata
    stop = meta.num_rows if stop is None else stop
    first, groups = 0, []
    for i in range(meta.num_row_groups):
        rows = meta.row_group(i).num_rows
        if first < stop and first + rows > start:
            groups.append(i)
        elif not groups:
            first += rows
    if not groups:
        return
    pos = first  # the file row of the next batch's first row
    batches = pf.iter_batches(batch_size=spec.batch_size, row_groups=groups, columns=list(spec.columns) or None,
                              use_threads=False)
    for rb in batches:
        a, b = max(start - pos, 0), min(stop - pos, rb.num_rows)
        if b > a:
            yield pos + a, rb.slice(a, b - a)
        pos += rb.num_rows
        if pos >= stop:
            return


@contextmanager
def _csv_reader(fs, file: InputFile, spec: ReadSpec,
                all_columns: bool = False) -> Iterator[pacsv.CSVStreamingReader]:
    """A streaming CSV reader; an empty field is null."""
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in spec.text_columns}, null_values=[""],
                                   strings_can_be_null=True,
                                   include_columns=[] if all_columns else list(spec.columns))
    with fs.open_input_stream(file.path, compression="detect") as stream:
        reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=spec.csv_block_bytes),
                                convert_options=convert)
        try:
            yield reader
        finally:
            reader.close()
