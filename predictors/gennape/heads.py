"""GENNAPE's prediction heads on frozen graph embeddings: MLP ensembles weighted by soft-cluster memberships.

- ``Regressor``: ``y'_i = sum_j U_ij f_j(h_i)`` (the paper's MLP-E); with one head and ``U = 1`` a plain MLP
  (CL+T). It regresses the FLOPs-transformed target (``clusters.FlopsTransform``).
- ``Pairwise``: which of two networks is more accurate. Each network's latent is the membership-weighted sum of
  its heads' 16-value outputs; the two latents, concatenated, go through an MLP to a logit (CL+Pairwise(+FCM)).

The C heads of an ensemble are one stacked weight tensor per layer (``HeadStack``), so an ensemble of 16
costs one batched matrix product per layer, not 16: what keeps fine-tuning on 50 networks within seconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class HeadStack(nn.Module):
    """``heads`` MLPs ``d_in -> hidden x layers -> d_out`` (ReLU between), evaluated together: (N, heads, d_out)."""

    def __init__(self, heads: int, d_in: int, hidden: int, layers: int, d_out: int) -> None:
        super().__init__()
        dims = [d_in] + [hidden] * layers + [d_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(heads, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(heads, 1, b).uniform_(-bound, bound)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(bias, x, weight)
            if k < len(self.weights) - 1:
                x = torch.relu(x)
        return x.permute(1, 0, 2)


class Regressor(nn.Module):
    def __init__(self, heads: int, d_in: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.heads = HeadStack(heads, d_in, hidden, layers, 1)

    def forward(self, h: torch.Tensor, memberships: torch.Tensor) -> torch.Tensor:
        return (self.heads(h).squeeze(-1) * memberships).sum(1)


def shift_output(bias: torch.Tensor, predicted: np.ndarray, target: np.ndarray) -> None:
    """Shift a regressor's last layer (``weight`` unchanged, ``bias``) so that its mean output on a new family's
    networks equals their mean ``target``, in place.

    Fine-tuning starts here: a regressor pretrained on one family may rank another well but sit several
    standard deviations away from its targets (OFA-MobileNetV3's accuracies under NB-201's standardisation:
    about -6); gradient steps would spend themselves on that shift and wreck the ranking on the way (SRCC of
    CL+T on OFA after fine-tuning: 0.65 without the shift, 0.89 with it, one seed). Only the mean moves:
    a least-squares line also rescaled the outputs and lost on NAS-Bench-101. A membership-weighted
    ensemble is shifted head by head: the memberships sum to one, so the sum moves alike."""
    shift = float(np.mean(np.asarray(target, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)))
    with torch.no_grad():
        bias.add_(shift)


class Pairwise(nn.Module):
    def __init__(self, heads: int, d_in: int, hidden: int, layers: int, latent: int = 16) -> None:
        super().__init__()
        self.heads = HeadStack(heads, d_in, hidden, layers, latent)
        self.compare = nn.Sequential(nn.Linear(2 * latent, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def latent(self, h: torch.Tensor, memberships: torch.Tensor) -> torch.Tensor:
        return (self.heads(h) * memberships.unsqueeze(-1)).sum(1)

    def logit(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Log-odds that the network of ``first`` (latents) is more accurate than that of ``second``."""
        return self.compare(torch.cat([first, second], dim=-1)).squeeze(-1)

    def win_rate(self, latents: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """For each network, its mean probability of beating each reference network: a score in (0, 1) that
        ranks like a round robin against a fixed field, so it means the same from one call to the next."""
        n, r = len(latents), len(reference)
        first = latents.unsqueeze(1).expand(n, r, -1)
        second = reference.unsqueeze(0).expand(n, r, -1)
        return torch.sigmoid(self.logit(first, second)).mean(1)


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.float32)


def train_regressor(model: Regressor, h: np.ndarray, memberships: np.ndarray, y: np.ndarray, epochs: int, lr: float,
                    batch: int, seed: int) -> Regressor:
    """MSE on the transformed target with Adam, a fixed number of epochs (the paper's 40; fine-tuning 100)."""
    generator = torch.Generator().manual_seed(seed)
    h_t, u_t, y_t = _tensor(h), _tensor(memberships), _tensor(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # one kernel for all weights
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(h_t), generator=generator)
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            optimizer.zero_grad()
            nn.functional.mse_loss(model(h_t[index], u_t[index]), y_t[index]).backward()
            optimizer.step()
    model.eval()
    return model


def train_pairwise(model: Pairwise, h: np.ndarray, memberships: np.ndarray, accuracy: np.ndarray, epochs: int,
                   lr: float, batch: int, seed: int, pairs_per_epoch: int) -> Pairwise:
    """Binary cross-entropy on random ordered pairs of networks of different accuracy (label: first wins)."""
    generator = torch.Generator().manual_seed(seed)
    h_t, u_t, acc = _tensor(h), _tensor(memberships), torch.as_tensor(np.asarray(accuracy), dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # one kernel for all weights
    model.train()
    for _ in range(epochs):
        first = torch.randint(len(h_t), (pairs_per_epoch,), generator=generator)
        second = torch.randint(len(h_t), (pairs_per_epoch,), generator=generator)
        keep = acc[first] != acc[second]
        first, second = first[keep], second[keep]
        for start in range(0, len(first), batch):
            a, b = first[start:start + batch], second[start:start + batch]
            optimizer.zero_grad()
            logit = model.logit(model.latent(h_t[a], u_t[a]), model.latent(h_t[b], u_t[b]))
            nn.functional.binary_cross_entropy_with_logits(logit, (acc[a] > acc[b]).float()).backward()
            optimizer.step()
    model.eval()
    return model
