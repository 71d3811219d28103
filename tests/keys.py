"""API keys for tests, made as ``mlgate tokens create`` makes them: a key store under the
test's directory, an admin key and narrower ones, and the config that points a server at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from access.keys import KeyStore


@dataclass
class KeyFixture:
    keys_file: Path
    store: KeyStore = field(init=False)
    admin: str = field(init=False)

    def __post_init__(self) -> None:
        self.store = KeyStore(str(self.keys_file), reload_interval_s=0.05)
        self.admin = self.create("test-admin", "admin")

    def create(self, name: str, *scopes: str, ttl_s: float | None = None) -> str:
        return self.store.create(name, list(scopes), ttl_s)[1]

    @property
    def auth(self) -> dict:
        """``serving.auth`` for a server that reads this store (changes seen within 50 ms)."""
        return {"keys_file": str(self.keys_file), "admin_key_file": str(self.keys_file.with_name("admin.key")),
                "reload_interval_s": 0.05}

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin}"}


def make_keys(directory: Path) -> KeyFixture:
    return KeyFixture(directory / "keys.json")
