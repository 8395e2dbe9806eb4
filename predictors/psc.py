"""AutoGO's PSC predictor: one k-GNN encodes a network's Predecessor, Segment and suCcessor separately.

The three embeddings (sum and mean readout of each part) are concatenated and an MLP predicts the
network's performance, so the prediction is sensitive to which segment sits where: the predictor that
ranks AutoGO's mutations. Encoding the three parts separately with shared weights is message passing on the
whole graph with the edges between parts removed (the ``partitioned`` view has none), then pooling per part:
the torch-geometric GraphConv net of ``predictors/gnn.py`` with a per-part readout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool, global_mean_pool

from hwnas.predictors.base import register
from hwnas.predictors.gnn import GnnNet, GnnPredictor, to_data

PARTS = 3


class PscNet(GnnNet):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__("graphconv", n_features, hidden, layers, dropout)
        self.head = nn.Sequential(nn.Linear(2 * PARTS * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.embed_nodes(batch)
        group, groups = batch.batch * PARTS + batch.part, batch.num_graphs * PARTS
        pooled = torch.cat([global_add_pool(h, group, size=groups), global_mean_pool(h, group, size=groups)], dim=1)
        return self.head(pooled.reshape(batch.num_graphs, -1)).squeeze(-1)


def to_part_data(graph: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Data:
    data = to_data(graph[:2])
    data.part = torch.as_tensor(np.asarray(graph[2]), dtype=torch.long)
    return data


@register
class PscPredictor(GnnPredictor):
    kind = "psc"
    conv = "graphconv"
    needs = ("partitioned",)
    view = "partitioned"
    to_data = staticmethod(to_part_data)
    description = "AutoGO PSC: shared k-GNN over Predecessor, Segment, suCcessor, concatenated, then an MLP"

    @classmethod
    def defaults(cls) -> dict:
        return {**super().defaults(), "hidden": 64, "layers": 3, "weight_decay": 1e-4, "batch_size": 32,
                "epochs": 40, "patience": 8, "lr_patience": 4, "loss": "mse"}

    def _net(self, n_features: int) -> PscNet:
        c = self.config
        return PscNet(int(c["n_features"]) or n_features, c["hidden"], c["layers"], c["dropout"])
