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
    """Write under a temporary name, then publish it as ``path`` (see :func:`publish`)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    write_bytes(fs, tmp, data)
    publish(fs, tmp, path)


def fsync_local(path: str) -> None:
    """Flush a local file, or a directory's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """:func:`fsync_local` on a file, or on every file and directory below a directory."""
    if os.path.isdir(path):
        for directory, _, names in os.walk(path):
            for name in names:
                fsync_local(os.path.join(directory, name))
            fsync_local(directory)
    else:
        fsync_local(path)


def publish(fs: pafs.FileSystem, tmp: str, final: str) -> None:
    """Make ``tmp`` (a file, or a directory of files) visible as ``final``, durably: on a
    local filesystem its data reach the disk before the rename and the rename reaches it
    before this returns, so a crash or power loss shows either nothing or the whole of it,
    never a name with missing data. Object stores publish a finished upload atomically.
    Raises OSError when ``final`` exists and the filesystem refuses to replace it."""
    if not is_local(fs):
        fs.move(tmp, final)
        return
    fsync_tree(tmp)
    fs.move(tmp, final)
    fsync_local(os.path.dirname(final))


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
