"""CPU per request of the HTTP connection layer alone (httptools parse -> app task ->
response write), with a transport that discards what is written and an app that answers
at once: what the server's own code costs, without the machine's network or a model.

    python benchmarks/bench_http_connection.py [--requests N] [--repeat K]

Runs on an older tree too (before ``serving/http/protocol.py`` became ``connection.py``),
so two trees can be compared with the same command: ``cd TREE && PYTHONPATH=. python ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

try:
    from serving.http.connection import HttpProtocol
except ImportError:  # a tree from before the rename
    from serving.http.protocol import HttpProtocol
try:
    from serving.config import HttpLimitsConfig
    from serving.http.connection import Connections

    def connections():
        return Connections(HttpLimitsConfig())
except ImportError:  # a tree from before the connection table: a plain set
    connections = set

REQUEST = (b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
           b"Content-Length: 300\r\n\r\n" + b"x" * 300)


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what is written (and whether it was closed), for driving a
    protocol without a socket (this benchmark, the fuzz target)."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


class App:
    async def handle(self, method, path, headers, body, error):
        return 200, [(b"content-type", b"application/json")], b'{"ok":1}'


async def cpu_us_per_request(requests: int) -> float:
    proto = HttpProtocol(App(), 1 << 20, connections())
    transport = RecordingTransport()
    proto.connection_made(transport)
    for _ in range(2000):  # warm-up
        proto.data_received(REQUEST)
        await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(requests):
        proto.data_received(REQUEST)
        await asyncio.sleep(0)  # the app's task runs and its answer is written
    spent_s = time.process_time() - started
    assert len(transport.out) >= requests, "not every request was answered"
    return spent_s / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="measurements; the best is printed")
    args = parser.parse_args()
    loop = uvloop.new_event_loop()
    best = min(loop.run_until_complete(cpu_us_per_request(args.requests)) for _ in range(args.repeat))
    print(f"{best:.2f} us CPU per request (best of {args.repeat} x {args.requests:,})")


if __name__ == "__main__":
    main()
