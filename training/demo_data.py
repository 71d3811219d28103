"""The seeded synthetic dataset behind the ``demo`` model.

Customers with numeric and categorical features and a binary churn target. ``shift``
moves the live distribution away from training for drift work: with ``shift=S`` the
features ``income``, ``tenure_months``, ``balance`` move by about S standard deviations
and ``plan`` tilts towards ``basic``; ``age``, ``credit_score``, ``num_products``,
``region`` and ``channel`` keep their training distribution.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from registry.schema import FeatureSpec, ModelSchema

NUMERIC = ("age", "income", "tenure_months", "balance", "credit_score", "num_products")
CATEGORICAL = {
    "region": ("north", "south", "east", "west", "central"),
    "plan": ("basic", "plus", "pro", "enterprise"),
    "channel": ("web", "ios", "android", "store"),
}
SHIFTED_FEATURES = ("income", "tenure_months", "balance", "plan")
TARGET = "churn"
CLASS_LABELS = ("stay", "churn")
PII_FEATURES = ("age",)


def demo_schema() -> ModelSchema:
    inputs = [FeatureSpec(name=n, datatype="FP64", pii=n in PII_FEATURES) for n in NUMERIC]
    inputs += [FeatureSpec(name=n, datatype="BYTES", categorical=True) for n in CATEGORICAL]
    return ModelSchema(
        kind="tabular",
        task="classification",
        inputs=tuple(inputs),
        outputs=ModelSchema.classifier_outputs(len(CLASS_LABELS)),
        class_labels=CLASS_LABELS,
        target=TARGET,
    )


def generate(rows: int, seed: int = 0, shift: float = 0.0, missing_share: float = 0.02) -> dict[str, np.ndarray]:
    """Columns of the demo dataset: float64 numerics (NaN = missing), object categoricals."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {
        "age": np.round(rng.uniform(18, 90, rows)),
        "income": np.exp(rng.normal(10.5 + 0.5 * shift, 0.5, rows)),
        "tenure_months": np.clip(rng.gamma(2.0, 15.0, rows) + 30.0 * shift, 0, None),
        "balance": rng.normal(2_000.0 + 1_500.0 * shift, 1_500.0, rows),
        "credit_score": np.clip(rng.normal(650, 80, rows), 300, 850),
        "num_products": rng.integers(1, 7, rows).astype(np.float64),
    }
    plan_p = np.array([0.4, 0.3, 0.2, 0.1]) + shift * np.array([0.3, -0.1, -0.1, -0.1])
    plan_p = np.clip(plan_p, 0.01, None)
    probs = {"region": None, "plan": plan_p / plan_p.sum(), "channel": np.array([0.4, 0.25, 0.25, 0.1])}
    for name, levels in CATEGORICAL.items():
        cols[name] = np.array(levels, dtype=object)[rng.choice(len(levels), rows, p=probs[name])]
    for name in ("income", "channel"):
        hole = rng.random(rows) < missing_share
        cols[name] = cols[name].copy()
        cols[name][hole] = np.nan if cols[name].dtype != object else None
    cols[TARGET] = _target(cols, rng)
    return cols


def _target(cols: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    income = np.nan_to_num(np.log(cols["income"]), nan=10.5)
    logit = (
        -0.04 * (cols["tenure_months"] - 30.0)
        - 1.2 * (income - 10.5)
        + 0.0006 * (cols["balance"] - 2_000.0)
        - 0.01 * (cols["credit_score"] - 650.0)
        + 0.3 * (cols["num_products"] - 3.5) ** 2 / 3.0
        + np.where(cols["plan"] == "basic", 0.8, 0.0)
        - np.where(cols["plan"] == "enterprise", 1.0, 0.0)
        + np.where(cols["channel"] == "store", -0.5, 0.0)
        + np.where(cols["region"] == "south", 0.4, 0.0)
        + 0.02 * (cols["age"] - 50.0)
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    return np.array(CLASS_LABELS, dtype=object)[(rng.random(len(p)) < p).astype(np.int64)]


def to_table(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays = {}
    for name, col in cols.items():
        if col.dtype == object:
            arrays[name] = pa.array(list(col), type=pa.string())
        else:
            arrays[name] = pa.array(col, type=pa.float64(), from_pandas=True)
    return pa.table(arrays)
