"""How the gateway deployment sizes its replicas: GPUs when the Ray cluster has them."""

from __future__ import annotations

import pytest

from serving.config import ServingConfig

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cluster_gpus, expected", [(0.0, 0.0), (0.5, 0.0), (1.0, 1.0), (8.0, 1.0)])
def test_auto_asks_for_one_gpu_per_replica_when_the_cluster_has_gpus(cluster_gpus, expected):
    from serving.deployment import gpus_per_replica

    assert gpus_per_replica(ServingConfig(), cluster_gpus) == expected


@pytest.mark.parametrize("configured", [0, 0.25, 2])
def test_an_explicit_gpu_count_wins(configured):
    from serving.deployment import gpus_per_replica

    cfg = ServingConfig(replica_num_gpus=configured)
    assert gpus_per_replica(cfg, 0.0) == configured
    assert gpus_per_replica(cfg, 4.0) == configured


def test_invalid_gpu_setting_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ServingConfig(replica_num_gpus="some")
    with pytest.raises(ValidationError):
        ServingConfig(replica_num_gpus=-1)


def test_this_cluster_gpus_decide_the_replica_request(ray_session):
    from mlgate.raycluster import cluster_gpus
    from serving.deployment import gpus_per_replica

    gpus = cluster_gpus()
    assert gpus == float(ray_session.cluster_resources().get("GPU", 0.0))
    assert gpus_per_replica(ServingConfig(), gpus) == (1.0 if gpus >= 1 else 0.0)
