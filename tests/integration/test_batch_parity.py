"""Batch scoring and the real-time routes agree, row for row (issue 6).

The same rows (categories unseen in training, missing values, extreme numbers, and
infinities that both sides must refuse) go through ``mlgate score`` on Ray Data and
through the gateway on Ray Serve, over real HTTP: the v2 route and the plain route, with a
client's key (``infer:demo``).
"""

from __future__ import annotations

import http.client
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from batch.config import BatchConfig
from batch.run import score
from tests.conftest import free_port
from tests.polling import wait_ready
from tests.unit.batch.batchdata import KEY, REJECTED, edge_rows
from training import demo_data

pytestmark = pytest.mark.integration


def post(port: int, key: str, path: str, doc) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(doc).encode(),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def json_rows(table) -> list[dict]:
    """Rows as a client writes them: a missing number is null (JSON has no NaN)."""
    rows = table.select(demo_data.demo_schema().feature_names).to_pylist()
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def v2_inputs(rows: list[dict]) -> list[dict]:
    """v2 JSON tensors: a missing number travels as the NaN literal, a missing category as ""."""
    inputs = []
    for spec in demo_data.demo_schema().inputs:
        values = [row[spec.name] for row in rows]
        values = ["" if v is None else v for v in values] if spec.categorical else \
            [math.nan if v is None else v for v in values]
        inputs.append({"name": spec.name, "datatype": "BYTES" if spec.categorical else "FP64",
                       "shape": [len(rows)], "data": values})
    return inputs


def test_batch_predictions_equal_the_v2_and_plain_routes(ray_session, demo_registry, tmp_path, keys):
    from ray import serve

    from serving.config import ServingConfig
    from serving.deployment import APP_NAME, deploy, shutdown_hub

    table = edge_rows(240)
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=60)
    summary = score("demo:1", str(tmp_path / "rows.parquet"), str(tmp_path / "out"), registry_root=demo_registry,
                    cfg=BatchConfig(batch_size=50, fragment_rows=120, concurrency=2), progress=False)
    assert summary.ok and (summary.rows_scored, summary.rows_rejected) == (238, 2)
    out = pq.read_table(tmp_path / "out").sort_by("_row")
    batch_probs = np.column_stack([out.column("prob_stay").to_numpy(), out.column("prob_churn").to_numpy()])
    batch_labels = out.column("predicted_label").to_pylist()
    kept = out.column("_row").to_pylist()
    rows = json_rows(table.take(kept))
    assert out.column(KEY).to_pylist() == table.take(kept).column(KEY).to_pylist()

    key = keys.create("parity-client", "infer:demo")
    port = free_port()
    deploy(demo_registry, ServingConfig(port=port, auth=keys.auth))
    try:
        wait_ready(port)
        status, plain = post(port, key, "/v1/models/demo/versions/1:predict", {"instances": rows})
        assert status == 200, plain
        plain_probs = np.array([[p["probabilities"][label] for label in ("stay", "churn")]
                                for p in plain["predictions"]])
        status, v2 = post(port, key, "/v2/models/demo/versions/1/infer", {"inputs": v2_inputs(rows)})
        assert status == 200, v2
        outputs = {o["name"]: o for o in v2["outputs"]}
        v2_probs = np.array(outputs["probabilities"]["data"], dtype=np.float32).reshape(-1, 2)

        np.testing.assert_allclose(batch_probs, v2_probs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(batch_probs, plain_probs, rtol=1e-6, atol=1e-7)
        assert batch_labels == outputs["label"]["data"] == [p["label"] for p in plain["predictions"]]

        for row, feature in REJECTED.items():  # what batch rejects, serving refuses, for the same reason
            one = {"inputs": v2_inputs(json_rows(table.slice(row, 1)))}
            status, body = post(port, key, "/v2/models/demo/versions/1/infer", one)
            assert status == 400 and feature in body["error"] and "infinity" in body["error"], body
    finally:
        serve.delete(APP_NAME)
        shutdown_hub()
