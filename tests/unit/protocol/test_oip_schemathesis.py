"""Schemathesis against the Open Inference Protocol REST spec (``../shared/specs``), driving
the gateway's own HTTP server on loopback: whatever it generates from the spec, no answer is
a 5xx. The spec's quirks are patched as its README says (``${`` is not templating); the
model path parameters are pinned to the served ``demo`` v1 so bodies reach the decoders."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from serving.config import ServingConfig

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "open-inference-protocol" / "open_inference_rest.yaml"


@pytest.fixture(scope="module")
def key(keys) -> str:
    return keys.create("schemathesis", "infer:demo")  # before the gateway starts: it knows the key at once


@pytest.fixture(scope="module")
def gateway(demo_registry, keys, key):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=keys.auth, metrics={"enabled": False},
                        prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    yield gw
    gw.stop()


def test_no_generated_request_gets_a_server_error(gateway, key, tmp_path):
    if not SPEC.exists():
        pytest.skip(f"the specs are not beside this checkout ({SPEC})")
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (make setup installs it)")
    text = SPEC.read_text().replace("${MODEL_NAME}", "demo").replace("${MODEL_VERSION}", "1").replace("${", "{")
    spec = tmp_path / "oip.yaml"
    spec.write_text(text)
    done = subprocess.run(
        [st, "run", str(spec), "--url", f"http://127.0.0.1:{gateway.port}", "--checks", "not_a_server_error",
         "--max-examples", "40", "--generation-deterministic", "--request-timeout", "30",
         "--no-color", "--header", f"Authorization: Bearer {key}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "Tested: 6" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]
