"""Demo rows for batch tests: unseen categories, missing values, extreme and non-finite numbers."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import torch

from registry.store import ModelVersion
from training import demo_data

KEY = "customer_id"
REJECTED = {4: "balance", 5: "age"}  # row -> the feature holding an infinity (FP64 inputs refuse it)


def edge_rows(n: int = 240, seed: int = 11) -> pa.Table:
    """``customer_id``, the demo features and ``churn``; rows 0-7 are the edge cases."""
    cols = demo_data.generate(n, seed=seed, shift=0.5, missing_share=0.1)
    numeric = {k: cols[k].astype(np.float64).tolist() for k in demo_data.NUMERIC}
    for k in numeric:  # NaN -> null: how Parquet writers usually store a missing number
        numeric[k] = [None if (v is not None and math.isnan(v)) else v for v in numeric[k]]
    categorical = {k: list(cols[k]) for k in demo_data.CATEGORICAL}
    categorical["region"][0], categorical["plan"][0] = "atlantis", "platinum"  # unseen in training
    for k in list(numeric) + list(categorical):
        (numeric if k in numeric else categorical)[k][1] = None  # every feature missing
    numeric["income"][2], numeric["balance"][2] = 1e300, -1e300  # extreme, finite
    numeric["age"][2], numeric["credit_score"][2] = 5e-324, 1.7976931348623157e308
    categorical["channel"][3] = ""  # empty: missing, as on the HTTP routes
    numeric["balance"][4], numeric["age"][5] = math.inf, -math.inf
    numeric["tenure_months"][6] = math.nan  # a NaN (not a null) in a float column: missing
    numeric["num_products"][7] = 1e18
    arrays = {KEY: pa.array([f"c{i:05d}" for i in range(n)])}
    arrays.update({k: pa.array(v, pa.float64()) for k, v in numeric.items()})
    arrays.update({k: pa.array(v, pa.string()) for k, v in categorical.items()})
    arrays["churn"] = pa.array(list(cols["churn"]), pa.string())
    return pa.table(arrays)


def oracle_probabilities(version: ModelVersion, table: pa.Table) -> np.ndarray:
    """The version's TorchScript on its preprocessor's matrix, one row at a time (no pipeline)."""
    module = torch.jit.load(version.path + "/model.pt", map_location="cpu")
    pre, schema = version.preprocessor(), version.schema
    out = []
    for i in range(table.num_rows):
        cols = {}
        for spec in schema.inputs:
            v = table.column(spec.name)[i].as_py()
            if spec.categorical:
                cols[spec.name] = np.array([None if v in (None, "") else v], dtype=object)
            else:
                cols[spec.name] = np.array([np.nan if v is None else v], dtype=np.float64)
        with torch.inference_mode():
            out.append(module(torch.from_numpy(pre.transform(cols))).numpy()[0])
    return np.array(out, dtype=np.float32)
