"""The PII salt never travels in a Serve deployment's arguments: ``build_app`` moves an inline
salt into a 0600 file, and each replica's prediction-log writer reads it there (issue 16)."""

from __future__ import annotations

import hashlib
import hmac
import stat
import time

import numpy as np
import pytest
from ray import cloudpickle  # what Ray serializes deployments and actors with

from contracts import predlog
from contracts.errors import ConfigError
from registry.schema import FeatureSpec, ModelSchema
from serving.config import PredictionLogConfig, ServingConfig
from serving.deployment import app_builder, build_app
from serving.observers import RequestRecord
from serving.predlog import PredictionLogWriter, pii_key

SALT = "s3cret-salt-for-tests"
EMAILS = [b"ana@example.com", b"bo@example.com"]
SCHEMA = ModelSchema(
    kind="tabular", task="classification", class_labels=("a", "b"),
    inputs=(FeatureSpec(name="x", datatype="FP64"),
            FeatureSpec(name="email", datatype="BYTES", categorical=True, pii=True)),
    outputs=ModelSchema.classifier_outputs(2),
)


def _cfg(tmp_path, **plog) -> ServingConfig:
    return ServingConfig(auth={"keys_file": str(tmp_path / "auth" / "keys.json")},
                         prediction_log={"flush_interval_s": 3600, **plog})


def _logged_emails(root, cfg: PredictionLogConfig) -> list[str]:
    writer = PredictionLogWriter(str(root), cfg)
    writer.buffer.record(RequestRecord(
        request_id="r1", ts_us=int(time.time() * 1e6), model="m", version="1", route="v2", status=200,
        latency_ms=1.0, error=None, rows=2, schema=SCHEMA,
        inputs={"x": np.array([1.0, 2.0]), "email": np.array(EMAILS, dtype=object)},
        outputs={"probabilities": np.full((2, 2), 0.5, np.float32), "label": np.array([b"a", b"b"], dtype=object)}))
    writer.close()
    return predlog.read_logs(str(root), "m")["in_email"].to_pylist()


def test_bound_deployment_carries_no_salt(tmp_path, caplog):
    caplog.set_level("INFO", logger="mlgate.deployment")
    app = build_app("/registry", _cfg(tmp_path, pii_salt=SALT))
    # what Serve sends to its controller (and keeps in the GCS): the pickled application
    assert SALT.encode() not in cloudpickle.dumps(app)
    salt_file = tmp_path / "auth" / "pii_salt"
    assert salt_file.read_text() == SALT
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert str(salt_file) in caplog.text and SALT not in caplog.text


def test_replica_hashes_with_the_salt_from_the_file(tmp_path):
    moved = _cfg(tmp_path, pii_salt=SALT)
    build_app("/registry", moved)  # writes the file
    from_file = PredictionLogConfig(flush_interval_s=3600, pii_salt_file=str(tmp_path / "auth" / "pii_salt"))
    expected = [hmac.new(SALT.encode(), e, hashlib.sha256).hexdigest()[:32] for e in EMAILS]
    assert _logged_emails(tmp_path / "logs", from_file) == expected
    assert _logged_emails(tmp_path / "inline", PredictionLogConfig(flush_interval_s=3600, pii_salt=SALT)) == expected


def test_salt_file_is_read_as_written_one_newline_ignored(tmp_path):
    path = tmp_path / "salt"
    path.write_bytes(SALT.encode() + b"\n")
    assert pii_key(PredictionLogConfig(pii_salt_file=str(path))) == SALT.encode()
    assert pii_key(PredictionLogConfig(pii_salt_file=str(path), pii_mode="drop")) is None
    assert pii_key(PredictionLogConfig()) is None


@pytest.mark.parametrize("content", [None, b"", b"\n"])
def test_missing_or_empty_salt_file_fails_the_start_naming_the_field(tmp_path, content):
    path = tmp_path / "salt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="pii_salt_file") as err:
        PredictionLogWriter(str(tmp_path / "logs"), PredictionLogConfig(pii_salt_file=str(path)))
    assert SALT not in str(err.value)


def test_salt_inline_and_in_a_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        build_app("/registry", _cfg(tmp_path, pii_salt=SALT, pii_salt_file=str(tmp_path / "salt")))


def test_a_serve_config_must_name_a_salt_file_not_hold_the_salt():
    with pytest.raises(ConfigError, match="pii_salt_file"):
        app_builder({"registry_root": "/registry", "serving": {"prediction_log": {"pii_salt": SALT}}})
    app = app_builder({"registry_root": "/registry", "serving": {"prediction_log": {"pii_salt_file": "/run/salt"}}})
    assert b"/run/salt" in cloudpickle.dumps(app)
