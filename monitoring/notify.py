"""Alert delivery: an Alertmanager-compatible JSON webhook, and the alert log entry.

``alertmanager_webhook``: the body Alertmanager itself POSTs to webhook receivers
(``version: "4"``, ``status``, ``groupLabels``, ``commonLabels``, ``alerts[]``), so any
receiver written for Alertmanager takes it. ``alertmanager_api``: the list of alerts
that Alertmanager's ``POST /api/v2/alerts`` accepts, to feed a real Alertmanager (point
``webhook_url`` at ``http://alertmanager:9093/api/v2/alerts``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request

from monitoring.alerts import Transition
from monitoring.config import AlertConfig

log = logging.getLogger("mlgate.monitoring")
ZERO_TIME = "0001-01-01T00:00:00Z"
RECEIVER = "mlgate-monitor"


def _alert(t: Transition, external_url: str) -> dict:
    labels = {k: str(v) for k, v in t.alert.labels.items()}
    return {
        "status": t.status,
        "labels": labels,
        "annotations": {k: str(v) for k, v in t.alert.annotations.items()},
        "startsAt": t.alert.starts_at or t.at,
        "endsAt": t.at if t.status == "resolved" else ZERO_TIME,
        "generatorURL": external_url,
        "fingerprint": hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16],
    }


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    return {k: v for k, v in dicts[0].items() if all(d.get(k) == v for d in dicts[1:])}


def webhook_body(transitions: list[Transition], cfg: AlertConfig) -> dict:
    """Alertmanager's webhook payload (version 4) for transitions of one model."""
    alerts = [_alert(t, cfg.external_url) for t in transitions]
    group = {"model": alerts[0]["labels"].get("model", "")}
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + f'model="{group["model"]}"' + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": RECEIVER,
        "groupLabels": group,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": cfg.external_url,
        "alerts": alerts,
    }


def api_body(transitions: list[Transition], cfg: AlertConfig) -> list[dict]:
    """The body of Alertmanager's ``POST /api/v2/alerts``."""
    return [{k: a[k] for k in ("labels", "annotations", "startsAt", "endsAt", "generatorURL")}
            for a in (_alert(t, cfg.external_url) for t in transitions)]


def deliver(transitions: list[Transition], cfg: AlertConfig) -> tuple[bool, str | None]:
    """POST the transitions (one request); ``(delivered, error)``. Never raises."""
    if not transitions or not cfg.webhook_url:
        return False, None
    body = webhook_body(transitions, cfg) if cfg.webhook_format == "alertmanager_webhook" \
        else api_body(transitions, cfg)
    request = urllib.request.Request(cfg.webhook_url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as resp:
            resp.read()
        return True, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alert webhook %s failed: %s", cfg.webhook_url, exc)
        return False, f"{type(exc).__name__}: {exc}"


def log_entries(transitions: list[Transition], delivered: bool, error: str | None) -> list[dict]:
    """One alert-log record per transition, with the delivery outcome."""
    return [{"at": t.at, "status": t.status, "window_id": t.window_id, "labels": t.alert.labels,
             "annotations": t.alert.annotations, "level": t.alert.level, "starts_at": t.alert.starts_at,
             "delivered": delivered, "error": error} for t in transitions]
