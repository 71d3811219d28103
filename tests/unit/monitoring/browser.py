"""A real headless browser for the report tests: Debian's chromium, installed on demand."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
import zlib

import numpy as np
from numba import njit

from tests import debian

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def find_or_install() -> tuple[str | None, str]:
    """(path, why not) for chromium; as root on Debian, ``apt-get install -y chromium`` once."""
    return debian.find_or_install(("chromium", "chromium-browser"), "chromium")


def run(chromium: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    # The browser is the oracle, not code under test: under `make test-clock` it runs on the
    # real clock (with libfaketime preloaded, its many processes take over a minute per page).
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    with tempfile.TemporaryDirectory(prefix="mlg-chromium-") as profile:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout_s, check=True, env=env)


def dump_dom(chromium: str, path: str) -> str:
    return run(chromium, "--dump-dom", f"file://{path}").stdout


def screenshot(chromium: str, path: str, out: str, size: str = "1280,2000") -> np.ndarray:
    run(chromium, f"--screenshot={out}", f"--window-size={size}", f"file://{path}")
    return png_pixels(out)


def attrs(dom: str, tag: str) -> list[dict[str, str]]:
    """Attributes of every opening ``tag`` in a serialised DOM."""
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', m)) for m in re.findall(rf"<{tag}\b([^>]*)>", dom)]


def png_pixels(path: str) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what chromium writes) to [h, w, c]."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * channels + 1)
    return _unfilter(raw, channels).reshape(height, width, channels)


@njit(cache=True)
def _unfilter(raw: np.ndarray, channels: int) -> np.ndarray:
    """PNG scanline filters (None, Sub, Up, Average, Paeth) undone, one row after the other."""
    height, stride = raw.shape[0], raw.shape[1] - 1
    out = np.zeros((height, stride), dtype=np.uint8)
    for y in range(height):
        kind = raw[y, 0]
        for x in range(stride):
            a = np.int32(out[y, x - channels]) if x >= channels else 0
            b = np.int32(out[y - 1, x]) if y > 0 else 0
            c = np.int32(out[y - 1, x - channels]) if x >= channels and y > 0 else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa_ <= pb and pa_ <= pc else (b if pb <= pc else c)
            out[y, x] = (np.int32(raw[y, x + 1]) + pred) & 0xFF
    return out
