"""Filesystem access for registry, logs and data roots: a local path or any pyarrow URI."""

from __future__ import annotations

import os
import uuid

import pyarrow.fs as pafs


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """Return (filesystem, path) for a local path or a URI such as ``s3://bucket/x``."""
    if "://" in root and not root.startswith("file://"):
        return pafs.FileSystem.from_uri(root)
    path = root[len("file://"):] if root.startswith("file://") else root
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as f:
        f.write(data)


def write_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write under a temporary name, then rename (atomic on local filesystems)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    write_bytes(fs, tmp, data)
    fs.move(tmp, path)


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def list_dirs(fs: pafs.FileSystem, path: str) -> list[str]:
    selector = pafs.FileSelector(path, allow_not_found=True)
    for attempt in range(3):
        try:
            info = fs.get_file_info(selector)
            break
        except FileNotFoundError:
            # pyarrow lists first and checks allow_not_found after: a directory created
            # between the two (a concurrent first publish) is reported missing. List again.
            if attempt == 2:
                raise
    return sorted(i.base_name for i in info if i.type == pafs.FileType.Directory)
