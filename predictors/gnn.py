"""Graph neural predictors on torch-geometric layers, for whole computation graphs of any family.

Input: the ``graphs`` view (one node per primitive op with its features, data edges in forward order; the
controller's ``cg_graph``), batched the PyG way (``torch_geometric.data.Batch``: disjoint union, a
``batch`` vector naming each node's graph). Layers ``h' = ReLU(LayerNorm(conv(h, edges)))`` with one of

- ``graphconv``: k-GNN / GraphConv (Morris et al. 2019), ``W_1 h_i + W_2 sum_{j -> i} h_j`` (GENNAPE, AutoGO);
- ``gcn``: GCNConv (Kipf and Welling; symmetric normalisation, self loops);
- ``gin``: GINConv with a two-layer MLP (Xu et al. 2019);
- ``gatv2``: GATv2Conv, attention over a node's inputs (Brody et al. 2022);

then the sum and the mean of the node embeddings through an MLP. Messages flow along the forward pass and
back (each edge in both directions), so a node sees what it feeds as well as what feeds it. Regression of
the standardised log target with AdamW, plateau halving and early stopping, as the BRP-NAS GCN
(``predictors/gcn.py``). Trains on CUDA when ``device`` is "cuda" (or "auto" and one is present).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import (
    GATv2Conv,
    GCNConv,
    GINConv,
    GraphConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from hwnas.predictors.base import Predictor, register
from hwnas.predictors.gcn import LogScale, NetState, log_target_loss, train_regressor
from hwnas.predictors.samples import Samples


def _gin(d_in: int, d_out: int) -> nn.Module:
    return GINConv(nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Linear(d_out, d_out)), train_eps=True)


CONVS = {
    "graphconv": lambda d_in, d_out: GraphConv(d_in, d_out, aggr="add"),
    "gcn": lambda d_in, d_out: GCNConv(d_in, d_out),
    "gin": _gin,
    "gatv2": lambda d_in, d_out: GATv2Conv(d_in, d_out, heads=1),
}


READOUTS = ("pool", "additive")


class GnnNet(nn.Module):
    """``readout``: ``pool`` (an MLP on the sum and mean of node embeddings: any target) or ``additive`` (each
    node's log cost from its embedding and own features, the graph's value their log-sum-exp: a network's
    latency as the sum of what its ops cost in their context; ``scale`` maps it to the standardised log)."""

    def __init__(self, conv: str, n_features: int, hidden: int, layers: int, dropout: float,
                 readout: str = "pool", scale: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {', '.join(CONVS)}, got {conv!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        dims = [n_features] + [hidden] * layers
        self.convs = nn.ModuleList(CONVS[conv](a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.readout = readout
        width = 2 * hidden if readout == "pool" else hidden + n_features
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32), persistent=False)

    def embed_nodes(self, batch: Batch) -> torch.Tensor:
        h, edges = batch.x, batch.edge_index
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h, edges)))
            if self.dropout.p > 0:
                h = self.dropout(h)
        return h

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.embed_nodes(batch)
        if self.readout == "pool":
            pooled = torch.cat([global_add_pool(h, batch.batch), global_mean_pool(h, batch.batch)], dim=1)
            return self.head(pooled).squeeze(-1)
        log_cost = self.head(torch.cat([h, batch.x], dim=1))  # (nodes, 1)
        top = global_max_pool(log_cost, batch.batch).detach()  # log-sum-exp without overflow
        total = torch.log(global_add_pool(torch.exp(log_cost - top[batch.batch]), batch.batch)) + top
        return (total.squeeze(-1) - self.scale[0]) / self.scale[1]


def to_data(graph: tuple[np.ndarray, np.ndarray]) -> Data:
    """One ``graphs`` entry as a PyG ``Data``; edges both ways (forward and backward along the network)."""
    x, edges = graph[0], graph[1]
    edges = torch.as_tensor(np.asarray(edges), dtype=torch.long).reshape(2, -1)
    return Data(x=torch.as_tensor(np.asarray(x), dtype=torch.float32),
                edge_index=torch.cat([edges, edges.flip(0)], dim=1))


def batches(graphs: Sequence[Data], device: torch.device, size: int = 256) -> list[Batch]:
    return [Batch.from_data_list(list(graphs[k:k + size])).to(device) for k in range(0, len(graphs), size)]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: torch sees no CUDA device here; use cpu or auto")
    return torch.device(name)


class GnnPredictor(NetState, Predictor):
    """Subclasses name their layer (``conv``); everything else is shared."""

    needs = ("graphs",)
    view = "graphs"  # the Samples view the net reads
    to_data = staticmethod(to_data)  # one entry of that view -> a PyG Data
    conv: str

    def __init__(self, **config) -> None:
        super().__init__(**config)
        readout = self.config["readout"]
        if readout not in READOUTS:  # said at once, not after the data is read
            raise ValueError(f"{self.kind}: readout must be one of {', '.join(READOUTS)}, got {readout!r}")

    @classmethod
    def defaults(cls) -> dict:
        return {"hidden": 128, "layers": 4, "dropout": 0.0, "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 16,
                "epochs": 150, "patience": 25, "lr_patience": 10, "seed": 0, "loss": "huber", "huber_delta": 0.015,
                "device": "auto", "n_features": 0, "readout": "pool"}

    def _net(self, n_features: int) -> GnnNet:
        c = self.config
        return GnnNet(self.conv, int(c["n_features"]) or n_features, c["hidden"], c["layers"], c["dropout"],
                      c.get("readout", "pool"), tuple(self.log.scale))

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        torch.manual_seed(int(self.config["seed"]))
        device = pick_device(self.config["device"])
        self.log = LogScale().fit(train.y)
        convert = type(self).to_data
        data = [convert(g) for g in getattr(train, self.view)]
        self.config["n_features"] = int(data[0].x.shape[1])
        self.net = self._net(self.config["n_features"]).to(device)
        valid = valid if valid is not None else train
        (valid_batch,) = batches([convert(g) for g in getattr(valid, self.view)], device, size=len(valid))
        loss = log_target_loss(self.config["loss"], self.config["huber_delta"], self.log)
        train_regressor(self.net, len(train),
                        lambda index: (Batch.from_data_list([data[i] for i in index.tolist()]).to(device),),
                        self.log.forward(train.y), (valid_batch,), self.log.forward(valid.y), self.config, loss,
                        device=device)
        self.net.to("cpu")

    def _predict(self, samples: Samples) -> np.ndarray:
        with torch.no_grad():
            data = [type(self).to_data(g) for g in getattr(samples, self.view)]
            standard = torch.cat([self.net(b) for b in batches(data, torch.device("cpu"))])
        return self.log.inverse(standard.numpy().astype(np.float64))

    def set_state(self, arrays) -> None:
        """As ``NetState``, with the net's input width from the config (GNN layers name their weights variously)."""
        self.log = LogScale(arrays["scale"])
        weights = {k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in arrays.items() if k != "scale"}
        self.net = self._net(int(self.config["n_features"]))
        self.net.load_state_dict(weights)
        self.net.eval()


@register
class KGnnPredictor(GnnPredictor):
    kind = "kgnn"
    conv = "graphconv"
    description = "k-GNN (GraphConv, torch-geometric) on the whole computation graph: any family, any size"


@register
class GcnCgPredictor(GnnPredictor):
    kind = "gcn-cg"
    conv = "gcn"
    description = "GCN (GCNConv, torch-geometric) on the whole computation graph: any family, any size"


@register
class GinPredictor(GnnPredictor):
    kind = "gin"
    conv = "gin"
    description = "GIN (GINConv, torch-geometric) on the whole computation graph: any family, any size"


@register
class GatPredictor(GnnPredictor):
    kind = "gatv2"
    conv = "gatv2"
    description = "GATv2 attention (torch-geometric) on the whole computation graph: any family, any size"
