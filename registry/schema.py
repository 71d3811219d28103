"""Input/output schema of a model version: names, v2 datatypes, per-row shapes.

A schema is plain data stored as ``schema.json`` in every model version. Serving
validates requests against it, batch scoring validates rows against it, and the
prediction log writes one column per input feature.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Open Inference Protocol v2 datatypes and their numpy equivalents (BYTES: object).
V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
NUMPY_TO_V2: dict[np.dtype, str] = {v: k for k, v in V2_TO_NUMPY.items()}
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One model input. For tabular models each feature is one column (shape [])."""

    name: str = Field(min_length=1, description="Input name on the wire and column name in logs")
    datatype: Datatype = Field(description="v2 datatype of the input")
    shape: tuple[int, ...] = Field(default=(), description="Per-row shape, batch dim excluded; -1 = any")
    categorical: bool = Field(default=False, description="Encoded by category, not scaled")
    nullable: bool = Field(default=True, description="null/NaN accepted and treated as missing")
    allow_nonfinite: bool = Field(default=False, description="Accept +-inf in numeric inputs")
    pii: bool = Field(default=False, description="Personal data: never written in clear to logs")

    @property
    def numpy_dtype(self) -> np.dtype:
        return V2_TO_NUMPY[self.datatype]


class OutputSpec(_Strict):
    name: str = Field(min_length=1)
    datatype: Datatype
    shape: tuple[int, ...] = Field(default=(), description="Per-row shape, batch dim excluded")


class ModelSchema(_Strict):
    """What a model version takes and returns.

    ``kind="tabular"``: one input per feature, a fitted preprocessor turns them into
    the model's float matrix. ``kind="tensor"``: inputs go to the model unchanged.
    """

    kind: Literal["tabular", "tensor"] = "tabular"
    task: Literal["classification", "regression", "other"] = "classification"
    inputs: tuple[FeatureSpec, ...] = Field(min_length=1)
    outputs: tuple[OutputSpec, ...] = Field(min_length=1)
    class_labels: tuple[str, ...] = Field(default=(), description="Classifier labels by index")
    target: str | None = Field(default=None, description="Training target column, if any")

    @model_validator(mode="after")
    def _check(self) -> ModelSchema:
        names = [f.name for f in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError("input names must be unique")
        if self.kind == "tensor" and len(self.inputs) != 1:
            raise ValueError("tensor models take exactly one input")
        if self.task == "classification" and not self.class_labels:
            raise ValueError("a classifier needs class_labels")
        return self

    def input(self, name: str) -> FeatureSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None

    def output(self, name: str) -> OutputSpec | None:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        return None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @classmethod
    def classifier_outputs(cls, n_classes: int) -> tuple[OutputSpec, ...]:
        return (
            OutputSpec(name="probabilities", datatype="FP32", shape=(n_classes,)),
            OutputSpec(name="label", datatype="BYTES", shape=()),
        )
