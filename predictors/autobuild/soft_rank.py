"""A differentiable Spearman correlation, our own (``torchsort`` has no wheel here and needs a build).

Soft ranks by pairwise sigmoids: ``r_i = sum_j sigmoid((s_i - s_j) / tau)`` on scores standardised within the
batch, so ``tau`` is in standard deviations; as ``tau -> 0`` they become the hard ranks (ties at one half).
The Spearman correlation is then the Pearson correlation of the soft ranks of the scores with the ranks of the
labels. O(B^2) memory per batch: cheap at AutoBuild's batch of 128.
"""

from __future__ import annotations

import torch


def soft_rank(scores: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Soft ranks (1-based, as the hard ranks) of a 1-D tensor."""
    z = (scores - scores.mean()) / (scores.std() + 1e-8)
    return torch.sigmoid((z.unsqueeze(1) - z.unsqueeze(0)) / tau).sum(dim=1) + 0.5


def hard_rank(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n with ties at their average rank (scipy's ``rankdata``)."""
    order = torch.argsort(values)
    sorted_values = values[order]
    ranks = torch.empty_like(values, dtype=torch.float32)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=torch.float32, device=values.device)
    unique, inverse = torch.unique(sorted_values, return_inverse=True)
    if len(unique) < len(values):  # average the ranks of ties
        sums = torch.zeros(len(unique), device=values.device).index_add_(0, inverse, ranks[order])
        counts = torch.zeros(len(unique), device=values.device).index_add_(0, inverse, torch.ones_like(sums[inverse]))
        ranks[order] = (sums / counts)[inverse]
    return ranks


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + 1e-8)


def soft_spearman(scores: torch.Tensor, labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Differentiable in ``scores``; the labels' ranks are constants."""
    return pearson(soft_rank(scores, tau), hard_rank(labels))
