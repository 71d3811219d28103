"""The replica's health check means it: a wedged event loop or a stuck model thread makes
it unhealthy (Ray Serve then restarts it); it is healthy again once they run."""

from __future__ import annotations

import threading

import pytest

from serving.config import ServingConfig

NO_AUTH = {"enabled": False}  # liveness is not about access control


@pytest.fixture(scope="module")
def gateway(demo_registry):
    from serving.gateway import Gateway

    cfg = ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=NO_AUTH, liveness_timeout_s=0.5,
                        metrics={"enabled": False}, prediction_log={"enabled": False})
    gw = Gateway(demo_registry, cfg)
    yield gw
    gw.stop()


def test_a_running_replica_is_healthy(gateway):
    assert gateway.healthy()


def unhealthy_while(gateway, block) -> None:
    """``block(wait)`` makes something of the replica run ``wait`` (which blocks until
    released): the replica is unhealthy meanwhile, and healthy again once it is released."""
    release = threading.Event()
    block(lambda: release.wait(60))
    try:
        assert not gateway.healthy()
    finally:
        release.set()
    assert gateway.healthy()


def test_a_wedged_event_loop_is_unhealthy_until_it_runs_again(gateway):
    unhealthy_while(gateway, gateway.server.loop.call_soon_threadsafe)  # something blocks the loop


def test_a_stuck_model_thread_is_unhealthy_until_it_takes_work_again(gateway):
    unhealthy_while(gateway, gateway.dataplane.model("demo").compute_thread.submit)  # a batch that never ends


def test_a_stopped_server_is_unhealthy(demo_registry):
    from serving.gateway import Gateway

    gw = Gateway(demo_registry, ServingConfig(host="127.0.0.1", port=0, unnice=False, auth=NO_AUTH,
                                              metrics={"enabled": False}, prediction_log={"enabled": False}))
    assert gw.healthy()
    gw.stop()
    assert not gw.healthy()
