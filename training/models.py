"""Model architectures trained by mlgate. Exported as TorchScript, so serving needs no code."""

from __future__ import annotations

import torch
from torch import nn


class TabularMLP(nn.Module):
    """An MLP over the preprocessed feature matrix, returning logits."""

    def __init__(self, in_features: int, n_outputs: int, hidden: tuple[int, ...] = (64, 32), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Softmax(nn.Module):
    """What a classifier version serves: class probabilities from the trained logits model."""

    def __init__(self, logits_model: nn.Module):
        super().__init__()
        self.model = logits_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=-1)


def export_classifier(logits_model: nn.Module) -> torch.jit.ScriptModule:
    return torch.jit.script(Softmax(logits_model.eval()))


class Rescale(nn.Module):
    """What a regressor version serves: the prediction in the target's own units."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, 0] * self.std + self.mean


def export_regressor(model: nn.Module, mean: float, std: float) -> torch.jit.ScriptModule:
    return torch.jit.script(Rescale(model.eval(), mean, std))
