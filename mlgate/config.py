"""The one typed configuration root, and the only module that reads ``MLGATE_*`` variables.

Precedence: command-line flags > environment (``MLGATE_SECTION__FIELD=value``; JSON for
lists and objects) > YAML file (``--config``) > defaults. Invalid values are rejected
at start with the field named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch.config import BatchConfig
from contracts.errors import ConfigError
from control.config import RolloutConfig
from monitoring.config import MonitoringConfig
from serving.config import ServingConfig
from training.config import TrainingConfig

ENV_PREFIX = "MLGATE_"
ENV_CONFIG_FILE = "MLGATE_CONFIG"
ENV_TOKEN = "MLGATE_TOKEN"  # the CLI's credential (an API key or a JWT), not a config field
ENV_TOKEN_FILE = "MLGATE_TOKEN_FILE"  # ... or a file holding it
_NOT_CONFIG = {ENV_CONFIG_FILE, ENV_TOKEN, ENV_TOKEN_FILE}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RayConfig(_Strict):
    address: str | None = Field(default=None, description="Cluster address; None starts a local Ray")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local Ray (None: all)")
    dashboard_port: int = Field(default=8265, ge=0, le=65_535, description="Local dashboard / job API port")
    namespace: str = Field(default="mlgate", description="Ray namespace of mlgate's actors")


class MlgateConfig(_Strict):
    registry_root: str = Field(default="var/registry", description="Model registry: path or pyarrow URI")
    data_root: str = Field(default="var/data", description="Versioned data splits: path or URI")
    runs_root: str = Field(default="var/runs", description="Training runs: path or URI")
    log_root: str = Field(default="var/logs", description="Prediction logs: path or URI")
    audit_root: str = Field(default="var/audit", description="The audit trail of admin actions (local path)")
    serving: ServingConfig = Field(default_factory=ServingConfig, description="Real-time serving")
    ray: RayConfig = Field(default_factory=RayConfig, description="Ray cluster")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig,
                                         description="Drift monitoring, alerts, live quality, retraining trigger")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Splits, training jobs, gate")
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Batch scoring (mlgate score)")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig,
                                   description="The rollout controller: evaluation interval, default steps and checks")

    def absolute(self) -> MlgateConfig:
        """Local roots made absolute, so Ray workers with another cwd find them."""
        fix = {k: _abs(getattr(self, k)) for k in ("registry_root", "data_root", "runs_root", "log_root",
                                                  "audit_root")}
        serving = self.serving
        auth, tls, plog = serving.auth, serving.tls, serving.prediction_log
        jwt = auth.jwt.model_copy(update=_abs_files(auth.jwt, "jwks_file"))
        auth = auth.model_copy(update={**_abs_files(auth, "keys_file", "admin_key_file"), "jwt": jwt})
        serving = serving.model_copy(update={
            "auth": auth, "tls": tls.model_copy(update=_abs_files(tls, "cert_file", "key_file", "client_ca_file")),
            "prediction_log": plog.model_copy(update=_abs_files(plog, "pii_salt_file"))})
        return self.model_copy(update={**fix, "serving": serving})


def _abs_files(section: BaseModel, *fields: str) -> dict[str, str]:
    return {f: str(Path(getattr(section, f)).expanduser().resolve()) for f in fields if getattr(section, f)}


def _abs(root: str) -> str:
    return root if "://" in root else str(Path(root).expanduser().resolve())


def load_config(path: str | None = None, overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> MlgateConfig:
    """Build the config; ``overrides`` use dotted keys (``serving.port``) from CLI flags."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(ENV_CONFIG_FILE)
    data: dict[str, Any] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key not in _NOT_CONFIG:
            _set(data, key[len(ENV_PREFIX):].lower().split("__"), _env_value(value))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(data, dotted.split("."), value)
    try:
        return MlgateConfig.model_validate(data).absolute()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{field}: {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def _env_value(raw: str) -> Any:
    if raw[:1] in "[{":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)}: conflicts with a scalar value")
    node[path[-1]] = value


def cli_token(cfg: MlgateConfig, token_file: str | None = None,
              environ: Mapping[str, str] | None = None) -> str | None:
    """The CLI's credential: ``MLGATE_TOKEN``, else the file ``--token-file`` or
    ``MLGATE_TOKEN_FILE`` names, else the admin key file ``mlgate up`` made (when readable)."""
    from access.keys import read_key_file

    environ = os.environ if environ is None else environ
    if environ.get(ENV_TOKEN):
        return environ[ENV_TOKEN].strip()
    path = token_file or environ.get(ENV_TOKEN_FILE)
    if path:
        return read_key_file(path)
    admin_file = cfg.serving.auth.admin_key_file
    return read_key_file(admin_file) if os.access(admin_file, os.R_OK) else None
