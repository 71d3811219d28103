"""Small torch models and their schemas that several tests register."""

from __future__ import annotations

import torch
from torch import nn

from registry import FeatureSpec, ModelSchema, Registry

MLP_SCHEMA = ModelSchema(kind="tensor", task="classification",
                         inputs=(FeatureSpec(name="x", datatype="FP32", shape=(32,)),),
                         outputs=ModelSchema.classifier_outputs(3), class_labels=("a", "b", "c"))


def mlp(seed: int, width: int = 32) -> nn.Module:
    """A 3-class softmax MLP over ``width`` inputs (``MLP_SCHEMA`` takes 32)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=-1))


def promote_by_hand(reg: Registry, version: int, name: str = "mlp"):
    """Promote a version registered by hand (ungated: no evaluation), as an admin would: forced, with a reason."""
    return reg.promote(name, version, actor="test", force=True, reason="a test model, never evaluated")


def publish_copy(reg: Registry, source, name: str) -> None:
    """``source``'s files published again, as the next version of ``name``."""
    reg.publish(name, {f: source.read(f) for f in source.manifest["files"] if f != "manifest.json"})


class Raises(nn.Module):
    """An ``MLP_SCHEMA`` model that passes its warm-up (zeros) and raises on any input that
    sums above 1: a version that breaks only on real traffic."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = mlp(9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 1.0):
            raise RuntimeError("this version breaks on real inputs")
        return self.inner(x)


class Slow(nn.Module):
    """``mlp(seed)``'s answers, many times slower: a stack of wide layers computed and then
    multiplied by zero (a version that is right but would break a latency budget)."""

    def __init__(self, seed: int = 1, width: int = 1024, layers: int = 6) -> None:
        super().__init__()
        self.inner = mlp(seed)
        torch.manual_seed(seed)
        self.heavy = nn.Sequential(nn.Linear(32, width), *[nn.Linear(width, width) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + 0.0 * self.heavy(x).sum(dim=1, keepdim=True)
