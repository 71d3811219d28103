"""``mlgate up``: start (or join) Ray, make sure ``demo`` exists, deploy, serve until a signal."""

from __future__ import annotations

import signal
import ssl
import sys
import threading
import time
import urllib.request

from contracts.errors import ConfigError
from mlgate import raycluster
from mlgate.config import MlgateConfig

OFF_BANNER = """\
************************************************************************************
* ACCESS CONTROL IS OFF (serving.auth.enabled: false): anyone who can reach        *
* {url:<80} *
* may predict, send labels and read metrics. Use this only on a private network.   *
************************************************************************************"""


def wait_ready(url: str, timeout_s: float = 180.0, context: ssl.SSLContext | None = None) -> None:
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise TimeoutError(f"{url} did not become ready within {timeout_s:.0f}s")
        time.sleep(0.2)


def curl_example(url: str, key_file: str | None = None, tls: bool = False) -> str:
    """A curl command that predicts with ``demo`` (with the key in ``key_file``; over TLS,
    verified against the CA that signed the server's certificate)."""
    row = ('{"instances": [{"age": 42, "income": 52000, "tenure_months": 18, "balance": 1200.5, '
           '"credit_score": 640, "num_products": 2, "region": "north", "plan": "basic", "channel": "web"}]}')
    auth = f' -H "Authorization: Bearer $(cat {key_file})"' if key_file else ""
    ca = " --cacert YOUR_CA.pem" if tls else ""
    return f"curl -s{ca} -X POST {url}/v1/models/demo:predict{auth} -H 'Content-Type: application/json' -d '{row}'"


def admin_key_file(cfg: MlgateConfig) -> str | None:
    """The admin key file, created (mode 0600) with its key when none works; None when
    access control is off."""
    auth = cfg.serving.auth
    if not auth.enabled:
        return None
    from access.keys import KeyStore, ensure_admin_key

    store = KeyStore(auth.keys_file, auth.reload_interval_s)
    ensure_admin_key(store, auth.admin_key_file,
                     on_create=lambda path: print(f"created an admin key in {path} (mode 0600; keys: "
                                                  f"{auth.keys_file})", flush=True))
    return auth.admin_key_file


def _probe_context(cfg: MlgateConfig) -> ssl.SSLContext | None:
    """How ``mlgate up`` checks its own replicas' readiness over TLS: the address is ours,
    so the certificate is not verified (its CA may be anything); nothing secret is sent."""
    if not cfg.serving.tls.enabled:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def admin_config(cfg: MlgateConfig, port: int | None = None, enabled: bool = True):
    """The admin API's listener: ``serving.admin`` with the port and switch of ``mlgate up
    --admin-port/--no-admin``."""
    from pydantic import ValidationError

    from control.config import AdminConfig
    from mlgate.config import describe

    base = cfg.serving.admin
    update = {"enabled": base.enabled and enabled} | ({"port": port} if port is not None else {})
    try:
        return AdminConfig.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(f"serving.admin (--admin-port): {describe(exc)}") from None


def deploy_audited(cfg: MlgateConfig, key_file: str | None):
    """A deploy is a configuration change: one audit record (``serving.deploy``) as the admin
    key's identity, naming the serving config by its sha256 (no secret is in it)."""
    import hashlib
    import json

    from mlgate.credentials import admin_action

    serving = cfg.serving.model_dump(mode="json", exclude={"prediction_log": {"pii_salt"}})
    digest = hashlib.sha256(json.dumps(serving, sort_keys=True).encode()).hexdigest()
    detail = {"config_sha256": digest, "replicas": cfg.serving.num_replicas, "port": cfg.serving.port,
              "models": cfg.serving.serve_models, "ray": cfg.ray.address or "local"}
    return admin_action(cfg, key_file, "serving.deploy", "mlgate", detail)


def run(cfg: MlgateConfig, admin=None) -> int:
    """``admin``: the admin API's listener (a :class:`control.config.AdminConfig`; default: :func:`admin_config`)."""
    raycluster.prepare_env(cfg.ray)  # before serving.deployment imports ray
    from ray import serve

    from registry import Registry
    from serving.deployment import deploy
    from training.quickfit import ensure_demo

    created = ensure_demo(Registry(cfg.registry_root))
    if created is not None:
        print(f"registered demo version {created.version} in {cfg.registry_root}", flush=True)
    key_file = admin_key_file(cfg)
    raycluster.init(cfg.ray)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own
        signal.signal(sig, lambda *_: stop.set())
    admin = admin or admin_config(cfg)
    try:
        admin_url = None
        if admin.enabled:  # its own listener in a Serve replica (Serve's HTTP proxy stays off)
            from control.deployment import deploy_admin

            admin_url = deploy_admin(cfg, admin)
        with deploy_audited(cfg, key_file):
            deploy(cfg.registry_root, cfg.serving, raycluster.cluster_gpus(), log_root=cfg.log_root,
                   audit_root=cfg.audit_root)
        if cfg.rollout.enabled:
            from control.rollout.service import ensure_actor, roots_of

            ensure_actor(cfg.rollout, roots_of(cfg), cfg.monitoring.alerts)
        tls = cfg.serving.tls
        host = cfg.serving.host
        if host == "node-ip":  # each replica listens on its node's address: here, this node's
            import ray

            host = ray.util.get_node_ip_address()
        url = f"{'https' if tls.enabled else 'http'}://{host}:{cfg.serving.port}"
        if tls.client_ca_file is None:  # with mutual TLS, Serve's own readiness has to do
            wait_ready(url, context=_probe_context(cfg))
        print(f"mlgate serving on {url} (Ray {'at ' + cfg.ray.address if cfg.ray.address else 'local'})")
        if cfg.serving.grpc.enabled:
            print(f"gRPC (v2 protocol, tritonclient.grpc{', TLS' if tls.enabled else ''}) on "
                  f"{host}:{cfg.serving.grpc.port}", flush=True)
        if key_file is None:
            print(OFF_BANNER.format(url=url), flush=True)
        else:
            print(f"admin key: {key_file} (create narrower keys: mlgate tokens create --name NAME "
                  f"--scope infer:demo)")
        print(f"try: {curl_example(url, key_file, tls.enabled)}", flush=True)
        if cfg.rollout.enabled:
            print(f"rollout controller running every {cfg.rollout.interval_s:g}s (mlgate rollout start MODEL VERSION)",
                  flush=True)
        if admin_url is not None:
            print(f"admin API on {admin_url} (OpenAPI docs: {admin_url}/docs; needs the admin key)", flush=True)
        while not stop.wait(1.0):
            pass
        print("shutting down", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from serving.deployment import APP_NAME, shutdown_hub

        if cfg.ray.address:
            serve.delete(APP_NAME)
            if admin.enabled:
                from control.deployment import delete_admin

                delete_admin()
            if cfg.rollout.enabled:
                from control.rollout.service import stop_actor

                stop_actor()
            shutdown_hub()
        else:
            serve.shutdown()
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(MlgateConfig()))
