"""The ``rollout`` load-test scenario's driver: while locust's users send steady traffic,
it changes what serves the model, as an operator would, step by step, and waits after
each step until every gateway replica reports the new table (``mlgate models status``'s
source: the replicas' status files under ``log_root``).

Steps: a new version (a copy of the serving one, standing in for a retrained model),
promote it, roll back, a canary at 25% then 50%, the traffic policy cleared, promote it
again; then the rollout controller (the one ``mlgate up`` runs) takes a second copy
through a shadow phase and canary steps 5, 25, 50, 100% to production, and rolls an
under-trained version (one epoch on 600 rows: it disagrees with production on a third of
the rows) back on its own in its shadow phase. Promotions, rollbacks, traffic changes and
rollouts go through the ``mlgate`` CLI with the run's credential, so they are authorised
and audited like a user's. Requests are named
by phase (``steady``, ``changing``, ``settled``) so the report compares each phase's p99
with the steady one; the run fails on any non-2xx answer, a step that did not reach every
replica, or a changing-phase p99 above 2x the steady p99.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import gevent

from contracts.replicas import live_statuses
from mlgate.config import load_config
from registry import Registry

STEP_BOUND_S = 90.0  # a step that has not reached every replica by then fails the run
ROLLOUT_BOUND_S = 600.0  # a controller's rollout that has not ended by then fails the run
P99_FACTOR = 2.0


@dataclass
class RolloutDriver:
    model: str
    token_file: str | None
    steady_s: float
    rollout_step_s: float = 10.0
    phase: str = "steady"
    steps: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def start(self) -> None:
        gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            self._steps()
        except Exception as exc:  # noqa: BLE001 - reported as the run's failure, never a silent stop
            self.problems.append(f"rollout driver stopped: {type(exc).__name__}: {exc}")
        self.phase = "settled"

    def _steps(self) -> None:
        cfg = load_config()
        reg = Registry(cfg.registry_root)
        gevent.sleep(self.steady_s)  # the steady phase: the baseline p99
        self.phase = "changing"
        old = self._serving(cfg)[-1]
        source = reg.get(self.model, old)
        force = [] if source.gate and source.gate.get("passed") else ["--force"]
        if reg.stages.state(self.model).production is None:  # production first, so a rollback has a target
            self._step(cfg, f"promote {old}", ["models", "promote", self.model, str(old), *force], [old])
        new = reg.publish(self.model, {f: source.read(f) for f in source.manifest["files"]}).version
        self._step(cfg, f"a new version {new} (a copy of {old}; production stays {old})", [], [old])
        self._step(cfg, f"promote {new}", ["models", "promote", self.model, str(new), *force], [new])
        self._step(cfg, "rollback", ["models", "rollback", self.model], [old])
        for share in ("25%", "50%"):
            self._step(cfg, f"canary {new} at {share}", ["traffic", "set", self.model, "--canary", f"{new}={share}"],
                       [old, new])
        self._step(cfg, "traffic policy cleared", ["traffic", "clear", self.model], [old])
        self._step(cfg, f"promote {new} again", ["models", "promote", self.model, str(new), *force], [new])
        copy = reg.publish(self.model, {f: source.read(f) for f in source.manifest["files"]}).version
        self._rollout(cfg, reg, copy, f"controller: version {copy} (a copy) shadow, 5-100%, production", "completed",
                      [copy])
        if self.model == "demo":
            from training.quickfit import fit_demo

            poor = fit_demo(reg, rows=600, epochs=1, seed=5).version
            self._rollout(cfg, reg, poor, f"controller: under-trained version {poor} rolled back on its own",
                          "failed", [copy])

    def _rollout(self, cfg, reg: Registry, version: int, what: str, expect: str, serving: list[int]) -> None:
        """``mlgate rollout start``, then wait for the controller to end it as ``expect``."""
        from registry.rollouts import RolloutBook

        started = time.monotonic()
        self._mlgate(what, ["rollout", "start", self.model, str(version), "--steps", "5,25,50,100",
                            "--step-s", f"{self.rollout_step_s:g}", "--shadow-first", f"{self.rollout_step_s:g}",
                            "--force"])
        book, give_up = RolloutBook(reg), time.monotonic() + ROLLOUT_BOUND_S
        while book.get(self.model).active and time.monotonic() < give_up:
            gevent.sleep(0.5)
        state = book.get(self.model)
        reached = state.status == expect and self._wait(cfg, serving)
        self.steps.append({"step": what, "serving": serving, "rollout": state.status, "reason": state.reason,
                           "phases": [e.phase for e in state.events if e.phase], "reached_all_replicas": reached,
                           "seconds": round(time.monotonic() - started, 2)})
        if not reached:
            self.problems.append(f"{what}: the rollout ended {state.status} ({state.reason}), expected {expect}, "
                                 f"replicas serving {serving}")

    def _mlgate(self, what: str, argv: list[str]) -> None:
        cmd = [sys.executable, "-m", "mlgate", *argv, "--reason", f"loadtest rollout: {what}"]
        if self.token_file:
            cmd += ["--token-file", self.token_file]
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=STEP_BOUND_S)
        if done.returncode != 0:
            raise RuntimeError(f"{what}: mlgate {' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]}")

    def _step(self, cfg, what: str, argv: list[str], serving: list[int]) -> None:
        started = time.monotonic()
        if argv:
            self._mlgate(what, argv)
        reached = self._wait(cfg, serving)
        self.steps.append({"step": what, "serving": serving, "reached_all_replicas": reached,
                           "seconds": round(time.monotonic() - started, 2)})
        if not reached:
            self.problems.append(f"{what}: the replicas did not all serve {serving} within {STEP_BOUND_S:.0f} s")

    def _wait(self, cfg, versions: list[int]) -> bool:
        give_up = time.monotonic() + STEP_BOUND_S
        while time.monotonic() < give_up:
            records = live_statuses(cfg.log_root, time.time())
            if records and all(r["models"].get(self.model, {}).get("serving") == versions
                               and not r["models"][self.model]["draining"] for r in records):
                return True
            gevent.sleep(0.2)
        return False

    def _serving(self, cfg) -> list[int]:
        records = live_statuses(cfg.log_root, time.time())
        if not records:
            raise RuntimeError(f"no live gateway replica reports its status under {cfg.log_root}")
        return records[0]["models"][self.model]["serving"]

    def verdict(self, p99_ms: dict[str, float], failures: int) -> list[str]:
        problems = list(self.problems)
        if self.phase != "settled":
            problems.append("the rollout did not finish within the run time (raise DURATION)")
        if failures:
            problems.append(f"{failures} requests failed during the rollout (zero allowed)")
        steady, changing = p99_ms.get("steady"), p99_ms.get("changing")
        if steady and changing and changing > P99_FACTOR * steady:
            problems.append(f"p99 while changing {changing:.0f} ms > {P99_FACTOR:g}x the steady p99 {steady:.0f} ms")
        return problems
