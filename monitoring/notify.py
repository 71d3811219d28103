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
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from contracts.clock import iso_s
from monitoring.alerts import Transition
from monitoring.config import AlertConfig

log = logging.getLogger("mlgate.monitoring")
ZERO_TIME = "0001-01-01T00:00:00Z"
RECEIVER = "mlgate-monitor"
ENDS_AFTER_INTERVALS = 4  # a firing alert's endsAt (alertmanager_api): this many repeat intervals ahead


def _alert(t: Transition, cfg: AlertConfig, now_s: float | None = None) -> dict:
    labels = {k: str(v) for k, v in t.alert.labels.items()}
    if t.status == "resolved":
        ends_at = t.at
    elif now_s is not None and cfg.webhook_format == "alertmanager_api":  # as Prometheus: ends unless re-sent
        ends_at = iso_s(now_s + ENDS_AFTER_INTERVALS * cfg.repeat_interval_s)
    else:
        ends_at = ZERO_TIME
    return {
        "status": t.status,
        "labels": labels,
        "annotations": {k: str(v) for k, v in t.alert.annotations.items()},
        "startsAt": t.alert.starts_at or t.at,
        "endsAt": ends_at,
        "generatorURL": cfg.external_url,
        "fingerprint": hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16],
    }


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    return {k: v for k, v in dicts[0].items() if all(d.get(k) == v for d in dicts[1:])}


def webhook_body(transitions: list[Transition], cfg: AlertConfig, now_s: float | None = None) -> dict:
    """Alertmanager's webhook payload (version 4) for transitions of one model."""
    alerts = [_alert(t, cfg, now_s) for t in transitions]
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


def api_body(transitions: list[Transition], cfg: AlertConfig, now_s: float | None = None) -> list[dict]:
    """The body of Alertmanager's ``POST /api/v2/alerts``."""
    return [{k: a[k] for k in ("labels", "annotations", "startsAt", "endsAt", "generatorURL")}
            for a in (_alert(t, cfg, now_s) for t in transitions)]


def deliver(transitions: list[Transition], cfg: AlertConfig, now_s: float | None = None, *,
            sleep: Callable[[float], None] = time.sleep,
            jitter: Callable[[], float] = random.random) -> tuple[bool, str | None, int]:
    """POST the transitions (one body), retrying ``cfg.retries`` times with exponential
    backoff and full jitter; ``(delivered, error, attempts)``. Never raises. Logs name the
    receiver without its credentials, path or query (``redact``)."""
    if not transitions or not cfg.webhook_url:
        return False, None, 0
    body = webhook_body(transitions, cfg, now_s) if cfg.webhook_format == "alertmanager_webhook" \
        else api_body(transitions, cfg, now_s)
    data = json.dumps(body).encode()
    error = None
    for attempt in range(cfg.retries + 1):
        if attempt:
            sleep(cfg.retry_backoff_s * 2 ** (attempt - 1) * 2 * jitter())  # mean: the backoff
        request = urllib.request.Request(cfg.webhook_url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=cfg.timeout_s) as resp:
                resp.read()
            return True, None, attempt + 1
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = _reason(exc)
    log.warning("alert webhook %s failed after %d attempt(s): %s", redact(cfg.webhook_url), cfg.retries + 1, error)
    return False, error, cfg.retries + 1


def redact(url: str) -> str:
    """``scheme://host[:port]/...``: no user, password, path or query (Slack-style webhook
    paths and ``user:pass@`` are secrets)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..." if parts.scheme else "<webhook>"


def _reason(exc: Exception) -> str:
    """Why a delivery failed, without any part of the URL (an invalid one may be echoed whole)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {exc.reason}" if isinstance(exc.reason, OSError) else "URLError"
    if isinstance(exc, ValueError):  # http.client.InvalidURL, unknown scheme
        return f"{type(exc).__name__}: the webhook URL is not valid"
    return f"{type(exc).__name__}: {exc.strerror or 'error'}" if isinstance(exc, OSError) else type(exc).__name__


def log_entries(transitions: list[Transition], delivered: bool, error: str | None) -> list[dict]:
    """One alert-log record per transition, with the delivery outcome."""
    return [{"at": t.at, "status": t.status, "window_id": t.window_id, "labels": t.alert.labels,
             "annotations": t.alert.annotations, "level": t.alert.level, "starts_at": t.alert.starts_at,
             "delivered": delivered, "error": error} for t in transitions]
