"""The model registry: numbered, immutable model versions with their schema, fitted
preprocessing, drift references, stages and lineage. The contracts every package shares
(errors, the prediction-log and feedback layouts, Prometheus metrics, task scores,
storage URIs, the clock) live in ``contracts``."""

from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from registry.store import ModelVersion, Registry, VersionPolicy

__all__ = ["FeatureSpec", "ModelSchema", "ModelVersion", "OutputSpec", "Registry", "VersionPolicy"]
