"""What the benchmark's servers are reached with, made once per run under its work dir (never
the repo's ``var/``): an API key as ``mlgate tokens create`` makes one, and a TLS
certificate for 127.0.0.1 signed by a CA of the run's own.

- :func:`api_key`: ``auth/keys.json`` with one key, ``bench``, scoped ``infer:MODEL`` for
  every bench model and ``metrics:read`` (a user's narrow key, not the admin one), and the
  path ``auth/admin.key`` that ``mlgate up`` fills with its admin key;
- :func:`certificates`: ``tls/ca.crt``, ``tls/server.crt`` and ``tls/server.key`` (ECDSA
  P-256, valid for two days, names 127.0.0.1 and localhost).

Both are idempotent: the second call in a run reads what the first wrote.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from benchmarks.serving import models as bm

KEY_NAME = "bench"
KEY_SCOPES = tuple(f"infer:{m}" for m in (bm.MLP, bm.HEAVY, bm.HEAVY_NOBATCH, bm.DEMO)) + ("metrics:read",)
CERT_VALID_FOR = dt.timedelta(days=2)


@dataclass(frozen=True)
class ApiKey:
    keys_file: Path
    admin_key_file: Path
    key: str

    def env(self) -> dict[str, str]:
        """``serving.auth`` pointed at these files (absolute: Ray's workers have another cwd)."""
        return {"MLGATE_SERVING__AUTH__ENABLED": "true",
                "MLGATE_SERVING__AUTH__KEYS_FILE": str(self.keys_file),
                "MLGATE_SERVING__AUTH__ADMIN_KEY_FILE": str(self.admin_key_file)}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def env(self) -> dict[str, str]:
        return {"MLGATE_SERVING__TLS__CERT_FILE": str(self.cert_file),
                "MLGATE_SERVING__TLS__KEY_FILE": str(self.key_file)}


AUTH_OFF_ENV = {"MLGATE_SERVING__AUTH__ENABLED": "false"}


def api_key(work: Path) -> ApiKey:
    """The run's ``bench`` key and its key store, created on first use."""
    from access.keys import KeyStore, read_key_file, write_private

    directory = work.resolve() / "auth"
    keys_file, saved = directory / "keys.json", directory / "bench.key"
    if saved.exists():
        return ApiKey(keys_file, directory / "admin.key", read_key_file(str(saved)))
    _, key = KeyStore(str(keys_file)).create(KEY_NAME, list(KEY_SCOPES))
    write_private(saved, (key + "\n").encode())
    return ApiKey(keys_file, directory / "admin.key", key)


def certificates(work: Path) -> Certificates:
    """The run's CA and a server certificate it signed, created on first use."""
    directory = work.resolve() / "tls"
    out = Certificates(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    if not out.key_file.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _make(out)
    return out


def _make(out: Certificates) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def builder(subject: str, key, issuer: str) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CERT_VALID_FOR))

    ca_name = "mlgate benchmark CA"
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (builder(ca_name, ca_key, ca_name)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    leaf = (builder("127.0.0.1", key, ca_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    out.ca_file.write_bytes(ca.public_bytes(pem))
    out.cert_file.write_bytes(leaf.public_bytes(pem))
    out.key_file.touch(mode=0o600)
    out.key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
