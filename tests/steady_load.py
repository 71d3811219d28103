"""A bounded, steady load of real HTTP requests in background threads, counting every
answer by status and by the version that answered: the oracle of the zero-failed-requests
tests (counts, never timings)."""

from __future__ import annotations

import collections
import http.client
import threading


class SteadyLoad:
    """``clients`` threads, each sending ``body`` to ``path`` one request at a time over a
    keep-alive connection it reopens every ``reconnect_every`` requests (so new connections
    keep reaching every replica behind the shared port) until :meth:`stop`."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str], *, clients: int = 4,
                 reconnect_every: int = 20, host: str = "127.0.0.1", timeout_s: float = 30.0) -> None:
        self.port, self.path, self.body, self.host, self.timeout_s = port, path, body, host, timeout_s
        self.headers = {"Content-Type": "application/json", **headers}
        self.reconnect_every = reconnect_every
        self.statuses: collections.Counter[int] = collections.Counter()
        self.versions: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []  # what each non-2xx answer or broken exchange said
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True, name=f"load-{i}") for i in range(clients)]

    def __enter__(self) -> SteadyLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 5)

    @property
    def answered(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def _client(self) -> None:
        conn = None
        sent = 0
        while not self._stop.is_set():
            if conn is None or sent % self.reconnect_every == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            sent += 1
            try:
                conn.request("POST", self.path, body=self.body, headers=self.headers)
                resp = conn.getresponse()
                body = resp.read()
                status, version = resp.status, resp.getheader("X-Model-Version", "")
            except (OSError, http.client.HTTPException) as exc:
                status, version, body = 0, "", repr(exc).encode()
                conn.close()
                conn = None
            with self._lock:
                self.statuses[status] += 1
                if 200 <= status < 300:
                    self.versions[version] += 1
                else:
                    self.failures.append(f"{status}: {body[:200]!r}")
        if conn is not None:
            conn.close()
