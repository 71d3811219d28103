"""Model registry: the one contract between serving, training, batch and monitoring."""

from registry.errors import (
    ConfigError,
    Conflict,
    DeadlineExceeded,
    InvalidInput,
    MlgateError,
    NotFound,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    RegistryError,
)
from registry.schema import FeatureSpec, ModelSchema, OutputSpec
from registry.store import ModelVersion, Registry, VersionPolicy

__all__ = [
    "Conflict",
    "ConfigError",
    "DeadlineExceeded",
    "FeatureSpec",
    "InvalidInput",
    "MlgateError",
    "ModelSchema",
    "ModelVersion",
    "NotFound",
    "NotReady",
    "OutputSpec",
    "Overloaded",
    "PayloadTooLarge",
    "Registry",
    "RegistryError",
    "VersionPolicy",
]
