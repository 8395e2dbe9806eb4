"""AutoGO's PSC predictor: one k-GNN encodes a network's Predecessor, Segment and suCcessor separately.

The three embeddings (sum and mean readout of each part) are concatenated and an MLP predicts the
network's performance, so the prediction is sensitive to which segment sits where: the predictor that
ranks AutoGO's mutations. Encoding the three parts separately with shared weights is message passing on the
whole graph with the edges between parts removed, then pooling per part: that is what ``_forward`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from predictors.base import register
from predictors.kgnn import KGnnNet, KGnnPredictor

PARTS = 3


class PscNet(KGnnNet):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__(n_features, hidden, layers, dropout)
        self.head = nn.Sequential(nn.Linear(2 * PARTS * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, edges: torch.Tensor, group_of: torch.Tensor, n_graphs: int) -> torch.Tensor:
        pooled = self.pool(x, edges, group_of, n_graphs * PARTS).reshape(n_graphs, -1)
        return self.head(pooled).squeeze(-1)


def collate(graphs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Partitioned graphs as one disjoint graph; each node's pooling group is ``3 * graph + part``."""
    offsets = np.cumsum([0] + [len(x) for x, _, _ in graphs])
    x = torch.as_tensor(np.concatenate([x for x, _, _ in graphs]), dtype=torch.float32)
    edges = torch.as_tensor(np.concatenate([e + offsets[k] for k, (_, e, _) in enumerate(graphs)], axis=1),
                            dtype=torch.long)
    group = np.concatenate([PARTS * k + part for k, (_, _, part) in enumerate(graphs)])
    return x, edges, torch.as_tensor(group, dtype=torch.long), len(graphs)


@register
class PscPredictor(KGnnPredictor):
    kind = "psc"
    needs = ("partitioned",)
    description = "AutoGO PSC: shared k-GNN over Predecessor, Segment, suCcessor, concatenated, then an MLP"
    view = "partitioned"
    collate = staticmethod(collate)

    @classmethod
    def defaults(cls) -> dict:
        return {"hidden": 64, "layers": 3, "dropout": 0.0, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32,
                "epochs": 40, "patience": 8, "lr_patience": 4, "seed": 0}

    def _net(self, n_features: int) -> PscNet:
        c = self.config
        return PscNet(n_features, c["hidden"], c["layers"], c["dropout"])
