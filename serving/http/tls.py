"""TLS on the gateway's listener (``serving.tls``): the server context and its reload.

The context speaks TLS 1.2 and 1.3 only, without compression or renegotiation, in the
server's cipher order; with ``client_ca_file`` every client must present a certificate that
CA signed (mutual TLS). :class:`ServerTls` looks at the files' identity (inode, size, mtime)
every ``reload_interval_s`` and loads a changed chain into the same context, so new
handshakes get the renewed certificate and open connections keep theirs. A replacement that
does not load (half written, a key that does not match) is logged and the old certificate
stays; a CA removed from ``client_ca_file`` stays trusted until a restart (OpenSSL's trust
store only grows).

Each file is read once per load and OpenSSL reads that snapshot (from memory where the
system allows), so a file rewritten mid-load cannot pair one certificate with another key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from contracts.clock import Clock, utc_now, wall_clock_s
from contracts.errors import ConfigError
from serving.config import TlsConfig

log = logging.getLogger("mlgate.http")
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Material:
    """One consistent read of the TLS files, checked: what a context loads."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: str | None
    leaf: x509.Certificate
    key_type: str  # the key's algorithm: a reload cannot change it (see ServerTls.check)


def read_material(cfg: TlsConfig) -> Material:
    """Read and check the files; ConfigError names the field (``serving.tls.cert_file`` ...)."""
    cert_pem, key_pem = _read("cert_file", cfg.cert_file), _read("key_file", cfg.key_file)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise ConfigError(f"serving.tls.cert_file: {cfg.cert_file} is not a PEM certificate chain ({exc})") from None
    if len(chain) != cert_pem.count(b"-----BEGIN CERTIFICATE-----"):
        raise ConfigError(f"serving.tls.cert_file: {cfg.cert_file} has an incomplete certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: encrypted with a password
        raise ConfigError(f"serving.tls.key_file: {cfg.key_file} is not an unencrypted PEM private key "
                          f"({exc})") from None
    if key.public_key().public_bytes(*_SPKI) != chain[0].public_key().public_bytes(*_SPKI):
        raise ConfigError(f"serving.tls.key_file: {cfg.key_file} is not the key of the certificate in "
                          f"serving.tls.cert_file ({cfg.cert_file})")
    client_ca_pem = None
    if cfg.client_ca_file is not None:
        client_ca_pem = _read("client_ca_file", cfg.client_ca_file).decode("ascii", "replace")
        try:
            x509.load_pem_x509_certificates(client_ca_pem.encode())
        except ValueError as exc:
            raise ConfigError(f"serving.tls.client_ca_file: {cfg.client_ca_file} is not a PEM CA bundle "
                              f"({exc})") from None
    return Material(cert_pem, key_pem, client_ca_pem, chain[0], type(key).__name__)


def server_context(material: Material) -> ssl.SSLContext:
    """A server context for ``material``: TLS 1.2+, mutual TLS when it has a client CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        _load_chain(ctx, material)
    except ssl.SSLError as exc:  # what read_material checked, OpenSSL still refused (a weak key ...)
        raise ConfigError(f"serving.tls.cert_file: OpenSSL refuses it with serving.tls.key_file ({exc})") from None
    if material.client_ca_pem is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cadata=material.client_ca_pem)
        except ssl.SSLError as exc:
            raise ConfigError(f"serving.tls.client_ca_file: OpenSSL refuses the CA bundle ({exc})") from None
    return ctx


class ServerTls:
    """The listener's context and what keeps it current. Build it where the server is
    configured (files are checked there: ConfigError); :meth:`check` and :meth:`run` run on
    the server's event loop, the only thread that touches the context."""

    def __init__(self, cfg: TlsConfig, clock: Clock = wall_clock_s) -> None:
        """``clock``: what a certificate's validity is compared with (a warning when outside it)."""
        self.cfg = cfg
        self.clock = clock
        self._stamps = _stamps(cfg)
        self.material = read_material(cfg)
        self.context = server_context(self.material)
        self._lock = asyncio.Lock()
        _warn_if_not_current(self.material.leaf, self.clock)

    @property
    def serial(self) -> int:
        """The serial number of the certificate new handshakes present."""
        return self.material.leaf.serial_number

    async def run(self) -> None:
        """Check the files every ``reload_interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.cfg.reload_interval_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the next look may succeed; the listener keeps serving
                log.exception("TLS reload: checking the files failed")

    async def check(self) -> bool:
        """Look at the files once; if they changed, load them. True when new handshakes get
        a new certificate (or client CA); a replacement that fails is logged once."""
        async with self._lock:
            stamps = await asyncio.to_thread(_stamps, self.cfg)
            if stamps == self._stamps:
                return False
            self._stamps = stamps  # taken before the read: a change during it is seen next time
            try:
                material = await asyncio.to_thread(read_material, self.cfg)
            except ConfigError as exc:
                log.error("TLS reload: %s; new connections keep getting certificate serial %x", exc, self.serial)
                return False
            return self._apply(material)

    def _apply(self, new: Material) -> bool:
        old = self.material
        if new.key_type != old.key_type:  # OpenSSL keeps one certificate per key type: the old would stay
            log.error("TLS reload: the key changed type (%s to %s); restart the gateway to switch", old.key_type,
                      new.key_type)
            return False
        try:
            _load_chain(self.context, new)
        except ssl.SSLError as exc:
            _load_chain(self.context, old)  # loaded before, so loads again: no handshake saw the gap
            log.error("TLS reload: OpenSSL refuses serving.tls.cert_file and key_file (%s); new connections "
                      "keep getting certificate serial %x", exc, self.serial)
            return False
        if new.client_ca_pem is not None and new.client_ca_pem != old.client_ca_pem:
            self._add_client_cas(new.client_ca_pem)
        self.material = new
        log.info("TLS: loaded certificate serial %x (%s)", self.serial, new.leaf.subject.rfc4514_string())
        _warn_if_not_current(new.leaf, self.clock)
        return True

    def _add_client_cas(self, pem: str) -> None:
        before = set(self.context.get_ca_certs(binary_form=True))
        try:
            self.context.load_verify_locations(cadata=pem)
        except ssl.SSLError as exc:
            log.error("TLS reload: OpenSSL refuses serving.tls.client_ca_file (%s); keeping the CAs before", exc)
            return
        now = {c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem.encode())}
        if before - now:
            log.warning("TLS reload: %d CA(s) removed from serving.tls.client_ca_file stay trusted until the "
                        "gateway restarts", len(before - now))


def _read(field: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"serving.tls.{field}: cannot read {path} ({exc.strerror})") from None


def _stamps(cfg: TlsConfig) -> tuple:
    out = []
    for path in (cfg.cert_file, cfg.key_file, cfg.client_ca_file):
        try:
            st = os.stat(path) if path is not None else None
        except OSError:
            st = None
        out.append(None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _load_chain(ctx: ssl.SSLContext, material: Material) -> None:
    with _snapshot(material.cert_pem, material.key_pem) as (cert_path, key_path):
        ctx.load_cert_chain(cert_path, key_path)


@contextmanager
def _snapshot(*blobs: bytes) -> Iterator[list[str]]:
    """Paths OpenSSL reads ``blobs`` from: anonymous memory files on Linux, else 0600 files
    in a private temporary directory, gone on exit."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = [os.memfd_create("mlgate-tls", os.MFD_CLOEXEC) for _ in blobs]
        try:
            for fd, blob in zip(fds, blobs):
                with open(fd, "wb", closefd=False) as f:
                    f.write(blob)
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="mlgate-tls-") as directory:
        paths = []
        for i, blob in enumerate(blobs):
            path = os.path.join(directory, str(i))
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(blob)
            paths.append(path)
        yield paths


def _warn_if_not_current(leaf: x509.Certificate, clock: Clock) -> None:
    now = utc_now(clock)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        log.warning("TLS: certificate serial %x is valid only from %s to %s", leaf.serial_number,
                    leaf.not_valid_before_utc.isoformat(), leaf.not_valid_after_utc.isoformat())
