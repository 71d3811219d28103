"""The environment the CLI's admin commands run in for a test, as a user's shell holds it:
a copy of the demo registry, an audit trail, a key store, and no credential until the test
makes one (``key_file``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from access.audit import AuditLog
from access.keys import KeyStore


def admin_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_registry: str) -> Path:
    """Point the CLI at ``tmp_path`` (``registry/``, ``audit/``, ``auth/``); returns ``tmp_path``."""
    shutil.copytree(demo_registry, tmp_path / "registry")
    for name, value in {"REGISTRY_ROOT": tmp_path / "registry", "AUDIT_ROOT": tmp_path / "audit",
                        "SERVING__AUTH__KEYS_FILE": tmp_path / "auth" / "keys.json",
                        "SERVING__AUTH__ADMIN_KEY_FILE": tmp_path / "auth" / "admin.key"}.items():
        monkeypatch.setenv(f"MLGATE_{name}", str(value))
    for name in ("MLGATE_CONFIG", "MLGATE_TOKEN", "MLGATE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def key_file(env: Path, name: str, scopes: list[str]) -> tuple[str, str]:
    """A key made as ``mlgate tokens create`` makes it: (its id, a file holding it)."""
    record, key = KeyStore(str(env / "auth" / "keys.json")).create(name, scopes)
    path = env / f"{name}.key"
    path.write_text(key + "\n")
    return record.id, str(path)


def audit_records(env: Path) -> list[dict]:
    return AuditLog(str(env / "audit")).records()
