"""k-GNN (GraphConv, Morris et al. 2019) on whole computation graphs, as GENNAPE and AutoGO use it.

Works on graphs of any size and family (NB-201 networks, OFA subnets, imported CNNs): each node carries
its op type and shape features, ``h_i' = ReLU(LayerNorm(W_1 h_i + W_2 sum_{j -> i} h_j))`` over the
graph's data edges, then the sum and the mean of the node embeddings go through an MLP. Message passing
is plain ``index_add_`` over an edge list, so it needs torch only. Trained like the GCN (log target,
AdamW, plateau halving, early stopping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from predictors.base import Predictor, register
from predictors.gcn import LogScale, NetState, train_regressor
from predictors.samples import Samples


class KGraphConv(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.root = nn.Linear(d_in, d_out)
        self.neighbours = nn.Linear(d_in, d_out, bias=False)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        summed = torch.zeros_like(h).index_add_(0, edges[1], h[edges[0]])
        return self.root(h) + self.neighbours(summed)


class KGnnNet(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        dims = [n_features] + [hidden] * layers
        self.convs = nn.ModuleList(KGraphConv(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def pool(self, x: torch.Tensor, edges: torch.Tensor, group_of: torch.Tensor, groups: int) -> torch.Tensor:
        """Message passing, then the sum and the mean of the node embeddings of each group: (groups, 2 * hidden)."""
        h = x
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.dropout(torch.relu(norm(conv(h, edges))))
        summed = torch.zeros(groups, h.shape[1]).index_add_(0, group_of, h)
        sizes = torch.zeros(groups).index_add_(0, group_of, torch.ones(len(group_of))).clamp(min=1.0)
        return torch.cat([summed, summed / sizes[:, None]], dim=1)

    def forward(self, x: torch.Tensor, edges: torch.Tensor, graph_of: torch.Tensor, n_graphs: int) -> torch.Tensor:
        return self.head(self.pool(x, edges, graph_of, n_graphs)).squeeze(-1)


def collate(graphs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Many graphs as one disjoint graph: stacked node features, offset edges, and each node's graph."""
    offsets = np.cumsum([0] + [len(x) for x, _ in graphs])
    x = torch.as_tensor(np.concatenate([x for x, _ in graphs]), dtype=torch.float32)
    edges = torch.as_tensor(np.concatenate([e + offsets[k] for k, (_, e) in enumerate(graphs)], axis=1),
                            dtype=torch.long)
    graph_of = torch.as_tensor(np.repeat(np.arange(len(graphs)), np.diff(offsets)), dtype=torch.long)
    return x, edges, graph_of, len(graphs)


@register
class KGnnPredictor(NetState, Predictor):
    kind = "kgnn"
    needs = ("graphs",)
    description = "k-GNN (GraphConv) on the whole computation graph: any family, any size"
    first_weight = "convs.0.root.weight"
    view = "graphs"  # the Samples view the net reads
    collate = staticmethod(collate)

    @classmethod
    def defaults(cls) -> dict:
        return {"hidden": 128, "layers": 4, "dropout": 0.0, "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 16,
                "epochs": 150, "patience": 25, "lr_patience": 10, "seed": 0}

    def _net(self, n_features: int) -> KGnnNet:
        c = self.config
        return KGnnNet(n_features, c["hidden"], c["layers"], c["dropout"])

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        torch.manual_seed(int(self.config["seed"]))
        self.log = LogScale().fit(train.y)
        graphs = list(getattr(train, self.view))
        self.net = self._net(graphs[0][0].shape[1])
        valid_graphs = list(getattr(valid if valid is not None else train, self.view))
        valid_y = (valid if valid is not None else train).y
        batch = type(self).collate
        train_regressor(self.net, len(train), lambda index: batch([graphs[i] for i in index.tolist()]),
                        self.log.forward(train.y), batch(valid_graphs), self.log.forward(valid_y), self.config)

    def _predict(self, samples: Samples) -> np.ndarray:
        graphs = list(getattr(samples, self.view))
        out = []
        with torch.no_grad():
            for start in range(0, len(graphs), 256):
                out.append(self.net(*type(self).collate(graphs[start:start + 256])).numpy())
        return self.log.inverse(np.concatenate(out).astype(np.float64))
