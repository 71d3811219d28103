"""Coverage-guided fuzz target (atheris) for the HTTP connection and the wire codecs.

Each input is split by its first byte: a raw HTTP byte stream for the connection layer
(``serving.http.connection``, its limits and httptools), a v2 infer body (JSON header plus
binary sections) for ``decode_infer_request``, or a plain-route body for
``decode_instances``. The property: nothing escapes but our 4xx errors, and every answer the
connection writes is a well-formed status line below 500 (or 503, its connection cap).

    python -m tests.fuzz.fuzz_protocol -max_total_time=300 [CORPUS_DIR]   (make fuzz)
    python -m tests.fuzz.fuzz_protocol -runs=20000 -seed=1 CORPUS_DIR     (the bounded run in make test)
"""

from __future__ import annotations

import asyncio
import sys

import atheris

with atheris.instrument_imports():
    from contracts.errors import MlgateError
    from registry.schema import FeatureSpec, ModelSchema
    from serving.config import HttpLimitsConfig
    from serving.http.connection import Connections, HttpProtocol
    from serving.protocol import decode_infer_request
    from serving.protocol.plain import decode_instances

from benchmarks.bench_http_connection import RecordingTransport  # noqa: E402 - after instrumenting

SCHEMA = ModelSchema(kind="tabular", task="classification", class_labels=("a", "b"),
                     inputs=(FeatureSpec(name="x", datatype="FP64"),
                             FeatureSpec(name="c", datatype="BYTES", categorical=True)),
                     outputs=ModelSchema.classifier_outputs(2))
LIMITS = HttpLimitsConfig(max_url_bytes=256, max_header_count=16, max_header_bytes=2048)


class App:
    """Decodes what arrives as the gateway would (v2 on /v2 paths, plain otherwise)."""

    async def handle(self, method, path, headers, body, error):
        if error is not None:
            return int(error.status), [], b"{}"
        try:
            if path.startswith("/v2"):
                decode_infer_request(body, model="m", version=None, header_length=None)
            else:
                decode_instances(body, SCHEMA, 8)
        except MlgateError as exc:
            assert 400 <= int(exc.status) < 500, exc
            return int(exc.status), [], b"{}"
        return 200, [], b"{}"


LOOP = asyncio.new_event_loop()


def http_stream(data: bytes) -> None:
    async def run() -> None:
        proto = HttpProtocol(App(), 4096, Connections(LIMITS), LIMITS)
        transport = RecordingTransport()
        proto.connection_made(transport)
        for i in range(0, len(data), 97):  # arbitrary packet boundaries
            if transport.closed:
                break
            proto.data_received(data[i:i + 97])
        for _ in range(4):
            await asyncio.sleep(0)
        proto.connection_lost(None)
        for chunk in transport.out:
            chunk = bytes(chunk)
            if chunk.startswith(b"HTTP/1.1 "):
                status = int(chunk[9:12])
                assert 100 <= status < 500 or status == 503, chunk[:80]

    LOOP.run_until_complete(run())


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, rest = data[0] % 3, data[1:]
    try:
        if kind == 0:
            http_stream(rest)
        elif kind == 1:
            split = rest[0] if rest else 0
            header_length = split if 0 < split <= len(rest) - 1 else None
            decode_infer_request(rest[1:], model="m", version=None, header_length=header_length)
        else:
            decode_instances(rest, SCHEMA, 8)
    except MlgateError as exc:
        if not 400 <= int(exc.status) < 500:
            raise


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
