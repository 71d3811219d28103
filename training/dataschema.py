"""The schema of a training dataset: column kinds, missing values, categorical levels.

Stored as ``schema.json`` in every dataset version; give it back to ``mlgate data ingest
--schema`` to validate new data against it. It maps to the registry's ``ModelSchema``
(numeric -> FP64, categorical -> BYTES) when a model trained on it is registered.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.schema import FeatureSpec, ModelSchema, OutputSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    name: str = Field(min_length=1, description="Column name in the source")
    kind: Literal["numeric", "categorical"] = Field(description="Scaled number or encoded category")
    nullable: bool = Field(default=True, description="Missing values allowed (else the row is rejected)")
    levels: tuple[str, ...] | None = Field(default=None, description="Allowed categories; None: any")
    pii: bool = Field(default=False, description="Personal data: never logged in clear by serving")


class DatasetSchema(_Strict):
    features: tuple[ColumnSpec, ...] = Field(min_length=1, description="Model inputs, in order")
    target: str = Field(min_length=1, description="Target column")
    task: Literal["classification", "regression"] = Field(description="What the target is")
    class_labels: tuple[str, ...] = Field(default=(), description="Classifier labels by index")
    group_by: str | None = Field(default=None, description="Rows sharing this key land in one split")

    @model_validator(mode="after")
    def _check(self) -> DatasetSchema:
        names = [c.name for c in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if self.target in names:
            raise ValueError(f"target {self.target!r} cannot also be a feature")
        if self.task == "classification" and len(self.class_labels) < 2:
            raise ValueError("a classification dataset needs at least two class_labels")
        if self.task == "regression" and self.class_labels:
            raise ValueError("a regression dataset has no class_labels")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def columns(self) -> list[str]:
        """Every column a split file holds: features, target, then the group key if any."""
        extra = [self.group_by] if self.group_by and self.group_by not in self.feature_names else []
        return [*self.feature_names, self.target, *extra]

    def model_schema(self) -> ModelSchema:
        inputs = tuple(
            FeatureSpec(name=c.name, datatype="BYTES" if c.kind == "categorical" else "FP64",
                        categorical=c.kind == "categorical", nullable=c.nullable, pii=c.pii)
            for c in self.features
        )
        if self.task == "classification":
            outputs = ModelSchema.classifier_outputs(len(self.class_labels))
        else:
            outputs = (OutputSpec(name="prediction", datatype="FP32", shape=()),)
        return ModelSchema(kind="tabular", task=self.task, inputs=inputs, outputs=outputs,
                           class_labels=self.class_labels, target=self.target)

    @classmethod
    def from_model_schema(cls, schema: ModelSchema, levels: dict[str, tuple[str, ...]] | None = None) -> DatasetSchema:
        levels = levels or {}
        features = tuple(
            ColumnSpec(name=f.name, kind="categorical" if f.categorical else "numeric", nullable=f.nullable,
                       levels=levels.get(f.name), pii=f.pii)
            for f in schema.inputs
        )
        if schema.target is None or schema.task not in ("classification", "regression"):
            raise ValueError("the model schema needs a target and a classification or regression task")
        return cls(features=features, target=schema.target, task=schema.task, class_labels=schema.class_labels)
