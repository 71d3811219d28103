"""Access control as a user meets it, on a real ``mlgate up`` with two replicas: the curl it
prints works; ``mlgate tokens create`` makes a key that works, ``revoke`` makes every replica
refuse it within seconds; a label forged by another identity is refused."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

import pytest

from tests.mlgate_up import REPO, auth_env, mlgate_up
from tests.polling import until
from tests.reference import ROW

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
PREDICT = json.dumps({"instances": [ROW]}).encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_registry):
    work = tmp_path_factory.mktemp("access")
    with mlgate_up(demo_registry, work, 300.0, MLGATE_SERVING__NUM_REPLICAS="2",
                   MLGATE_SERVING__REPLICA_NUM_CPUS="0.5") as up:
        yield up, work


def cli(work, *argv: str, token_file: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_")}
    env.update(auth_env(work), PYTHONPATH=str(REPO))
    if token_file:
        env["MLGATE_TOKEN_FILE"] = token_file
    return subprocess.run([sys.executable, "-m", "mlgate", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def predict(port: int, key: str | None, body: bytes = PREDICT, path: str = "/v1/models/demo:predict"):
    """One request on a new connection (the kernel spreads new connections over the replicas)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.getheader("x-request-id"), response.read()
    finally:
        conn.close()


def test_the_printed_curl_works(served):
    up, _ = served
    # mlgate up prints it once its own readiness probe passed, a moment after the test's
    [line] = until(lambda: [ln for ln in up.log_path.read_text().splitlines() if ln.startswith("try: curl ")],
                   30.0, "the curl example in mlgate up's output")
    assert "Authorization: Bearer $(cat " in line
    done = subprocess.run(["bash", "-c", line.removeprefix("try: ") + " -w '\\n%{http_code}'"],
                          capture_output=True, text=True, timeout=60)
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "200", done.stdout + done.stderr
    assert json.loads(body)["predictions"][0]["label"] in ("stay", "churn")
    assert "created an admin key in" in up.log_path.read_text()
    assert oct(os.stat(up.keys_file.with_name("admin.key")).st_mode & 0o777) == "0o600"


def test_a_created_key_works_and_a_revoked_one_is_refused_by_every_replica(served):
    up, work = served
    admin_file = str(up.keys_file.with_name("admin.key"))
    made = cli(work, "tokens", "create", "--name", "shop", "--scope", "infer:demo", token_file=admin_file)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    until(lambda: all(predict(up.port, key)[0] == 200 for _ in range(20)), 30.0, "the new key on every replica")
    assert predict(up.port, None)[0] == 401
    listed = cli(work, "tokens", "list", "--json", token_file=admin_file)
    assert {k["name"]: k["status"] for k in json.loads(listed.stdout)}["shop"] == "active"
    revoked = cli(work, "tokens", "revoke", "shop", token_file=admin_file)
    assert revoked.returncode == 0, revoked.stderr
    until(lambda: all(predict(up.port, key)[0] == 401 for _ in range(40)), 30.0, "the revocation on every replica")
    audit = cli(work, "audit", "verify", token_file=admin_file)
    # mlgate up's deploy (a configuration change), the key's creation and its revocation
    assert audit.returncode == 0 and "intact: 3 records" in audit.stdout, audit.stdout + audit.stderr
    listed = cli(work, "audit", "list", token_file=admin_file)
    assert "serving.deploy" in listed.stdout, listed.stdout + listed.stderr


def test_a_forged_label_is_refused_and_the_owner_s_is_accepted(served):
    up, work = served
    admin_file = str(up.keys_file.with_name("admin.key"))
    keys = {}
    for name, scopes in {"owner": ["infer:demo", "feedback:demo"], "forger": ["feedback:demo"]}.items():
        made = cli(work, "tokens", "create", "--name", name, *[a for s in scopes for a in ("--scope", s)],
                   token_file=admin_file)
        keys[name] = made.stdout.strip()
    until(lambda: predict(up.port, keys["owner"])[0] == 200, 30.0, "the owner's key")
    status, request_id, _ = predict(up.port, keys["owner"])
    assert status == 200 and len(request_id) == 32
    label = json.dumps({"request_id": request_id, "label": "churn"}).encode()

    def answer(who: str) -> int:
        return predict(up.port, keys[who], label, "/v2/models/demo/feedback")[0]
    # the prediction is published within the other replica's flush interval; until then both get 404
    until(lambda: answer("owner") == 200, 30.0, "the owner's label", interval_s=0.5)
    assert answer("forger") == 404
