"""A bounded, seeded run of the coverage-guided fuzz target (``tests/fuzz/fuzz_protocol.py``);
``make fuzz`` runs it for longer. A crash or an escaping exception fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

TARGET = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_protocol.py"
SEEDS = {  # first byte: 0 the HTTP stream, 1 a v2 body (then its header length), 2 a plain body
    "http": b"\x00POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}"
            b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n",
    "v2": b'\x01\x00{"id":"r","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]}',
    "binary": b'\x01\x4c{"inputs":[{"name":"x","datatype":"INT8","shape":[2],"parameters":{"binary_data_size":2}}]}'
              b"\x01\x02",
    "plain": b'\x02{"instances":[{"x":1.5,"c":"a"},{"x":null}],"id":"r1","parameters":{"timeout_s":1}}',
}


def test_the_fuzz_target_survives_a_seeded_run(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.fuzz_protocol", "-runs=20000", "-seed=1",
                           "-max_len=2048", str(corpus)], cwd=TARGET.parents[2], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Done 20000 runs" in done.stderr
