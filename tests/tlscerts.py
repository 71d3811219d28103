"""A throwaway PKI for TLS tests, made with ``cryptography``: a test CA, a server certificate
for 127.0.0.1 and localhost (SAN IP and DNS), a client certificate the CA signed and one a
stranger CA signed, written as PEM files under a test's directory.

    pki = make_pki(tmp_path)
    ServingConfig(tls={"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file)})
    ssl.create_default_context(cafile=pki.ca.cert_file)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = dt.timedelta(days=2)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as objects and as the PEM files they were written to."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def der(self) -> bytes:
        """What ``SSLSocket.getpeercert(binary_form=True)`` returns for this certificate."""
        return self.cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Authority:
    """A self-signed CA that issues server and client certificates into ``directory``."""

    name: str
    issued: Issued
    directory: Path

    @property
    def cert_file(self) -> Path:
        return self.issued.cert_file

    def issue(self, stem: str, common_name: str, *, server: bool,
              curve: ec.EllipticCurve | None = None) -> Issued:
        """A leaf certificate (fresh key on ``curve``, P-256 by default; random serial) written to
        ``stem.crt``/``stem.key``; a server's names are 127.0.0.1 and localhost."""
        key = ec.generate_private_key(curve or ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _builder(common_name, key, self.issued.cert.subject) \
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True) \
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.issued.key, hashes.SHA256())
        return write_pair(cert, key, self.directory / f"{stem}.crt", self.directory / f"{stem}.key")


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued  # for 127.0.0.1 and localhost, signed by ca
    client: Issued  # signed by ca
    stranger: Issued  # a client certificate signed by another CA
    stranger_ca: Authority


def client_context(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    """A client's context that trusts ``pki``'s CA and, given ``cert``, presents it (mutual TLS)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    if cert is not None:
        ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def make_authority(directory: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _builder(name, key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])) \
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True) \
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True) \
        .sign(key, hashes.SHA256())
    stem = name.lower().replace(" ", "-")
    return Authority(name, write_pair(cert, key, directory / f"{stem}.crt", directory / f"{stem}.key"), directory)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_authority(directory, "mlgate test CA")
    stranger_ca = make_authority(directory, "stranger CA")
    return Pki(ca=ca, server=ca.issue("server", "127.0.0.1", server=True),
               client=ca.issue("client", "test-client", server=False),
               stranger=stranger_ca.issue("stranger", "stranger-client", server=False), stranger_ca=stranger_ca)


def write_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_file: Path, key_file: Path) -> Issued:
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return Issued(cert, key, cert_file, key_file)


def _builder(common_name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return x509.CertificateBuilder() \
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])) \
        .issuer_name(issuer) \
        .public_key(key.public_key()) \
        .serial_number(x509.random_serial_number()) \
        .not_valid_before(now - dt.timedelta(minutes=5)) \
        .not_valid_after(now + VALID_FOR)
