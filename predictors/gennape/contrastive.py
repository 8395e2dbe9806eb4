"""GENNAPE's contrastive graph encoder (Mills et al. 2023, Eq. 1 and the supplement's settings).

A computation graph becomes a fixed-length embedding ``h`` (128 values): a k-GNN (GraphConv, 4 layers)
and a one-layer Transformer over the nodes (2 heads), each mean-pooled to 64 values and concatenated.
Training is SimCLR with dropout as the augmentation: every graph of a batch goes through the encoder twice
(dropout 0.1 makes the two copies differ), a projection head maps each ``h`` onto the unit sphere, and the
loss pulls together, for each copy ``i``, the copies ``l`` weighted by ``alpha_l^(i)``: a softmax over
``l != i`` of minus the spectral distance between the two graphs (``hwnas.predictors.gennape.spectral``) over
``spectral_temperature``, so a graph's own copy (distance 0) and graphs of the same topology are its
positives. (The paper writes "the softmax of sigma"; weighting the farthest graphs most would push apart
what it means to group, so the sign is taken as a similarity.) A second head regresses the graph's
standardised log FLOPs, the paper's regulariser.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GraphConv, global_mean_pool
from torch_geometric.utils import to_dense_batch


class GraphEncoder(nn.Module):
    """k-GNN + Transformer, mean-pooled and concatenated: ``h`` of ``2 * width`` values per graph."""

    def __init__(self, n_features: int, width: int = 64, gnn_layers: int = 4, heads: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.convs = nn.ModuleList(GraphConv(width, width, aggr="add") for _ in range(gnn_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(gnn_layers))
        self.transformer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout,
                                                      batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.width = 2 * width

    def forward(self, batch: Batch) -> torch.Tensor:
        x = self.dropout(torch.relu(self.embed(batch.x)))
        h = x
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.dropout(torch.relu(norm(conv(h, batch.edge_index))))
        dense, mask = to_dense_batch(x, batch.batch)
        attended = self.transformer(dense, src_key_padding_mask=~mask)
        attended = (attended * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return torch.cat([global_mean_pool(h, batch.batch), attended], dim=1)


class ContrastiveModel(nn.Module):
    def __init__(self, encoder: GraphEncoder, projection: int = 32) -> None:
        super().__init__()
        self.encoder = encoder
        self.project = nn.Sequential(nn.Linear(encoder.width, encoder.width), nn.ReLU(),
                                     nn.Linear(encoder.width, projection))
        self.flops = nn.Linear(encoder.width, 1)


def weighted_contrastive_loss(z: torch.Tensor, alpha: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 1: ``-sum_i sum_{l != i} alpha_l^(i) log softmax_{r != i}(z_i . z_r / tau)_l``, averaged over i.
    ``z`` (2N, p) unit rows; ``alpha`` (2N, 2N) rows summing to 1 with a zero diagonal."""
    similarity = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_p = torch.log_softmax(similarity.masked_fill(eye, float("-inf")), dim=1).masked_fill(eye, 0.0)
    return -(alpha * log_p).sum(1).mean()


def positive_weights(spectra: torch.Tensor, temperature: float) -> torch.Tensor:
    """``alpha`` for the two copies of N graphs (copy k and k + N are one graph): a softmax over the other
    copies of minus the spectral distance / ``temperature``."""
    doubled = torch.cat([spectra, spectra])
    distance = torch.cdist(doubled, doubled)
    eye = torch.eye(len(doubled), dtype=torch.bool)
    return torch.softmax((-distance / temperature).masked_fill(eye, float("-inf")), dim=1)


def train_encoder(data: list[Data], spectra: np.ndarray, log_flops: np.ndarray, config: dict,
                  progress: Callable[[int, float], None] = lambda epoch, loss: None) -> GraphEncoder:
    """Contrastive pretraining on ``data`` (one PyG graph each) for ``config["cl_epochs"]`` epochs."""
    generator = torch.Generator().manual_seed(int(config["seed"]))
    torch.manual_seed(int(config["seed"]))
    model = ContrastiveModel(GraphEncoder(int(data[0].x.shape[1]), int(config["width"]),
                                          dropout=float(config["cl_dropout"])), int(config["projection"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(config["cl_lr"]), weight_decay=1e-4)
    spectra_t = torch.as_tensor(spectra, dtype=torch.float32)
    flops_t = torch.as_tensor((log_flops - log_flops.mean()) / (log_flops.std() or 1.0), dtype=torch.float32)
    size = int(config["cl_batch"])
    model.train()
    sizes = torch.tensor([d.num_nodes for d in data])
    for epoch in range(int(config["cl_epochs"])):
        total = 0.0
        for index in _size_sorted_batches(sizes, size, generator):
            batch = Batch.from_data_list([data[i] for i in index.tolist()])
            h = torch.cat([model.encoder(batch), model.encoder(batch)])
            z = nn.functional.normalize(model.project(h), dim=1)
            alpha = positive_weights(spectra_t[index], float(config["spectral_temperature"]))
            loss = weighted_contrastive_loss(z, alpha, float(config["cl_temperature"]))
            loss = loss + nn.functional.mse_loss(model.flops(h).squeeze(-1), flops_t[index].repeat(2))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        progress(epoch, total / len(data))
    model.eval()
    return model.encoder


def _size_sorted_batches(sizes: torch.Tensor, size: int, generator: torch.Generator, chunk: int = 8
                         ) -> list[torch.Tensor]:
    """Random batches of graphs of similar size: a random order cut into chunks of ``chunk`` batches, each
    chunk sorted by node count. The Transformer pads every graph to the batch's largest, and attention costs
    the square of that; mixing a 40-node cell with a 300-node one paid for 300 twice."""
    order = torch.randperm(len(sizes), generator=generator)
    out = []
    for start in range(0, len(order), size * chunk):
        part = order[start:start + size * chunk]
        part = part[torch.argsort(sizes[part], stable=True)]
        out += [b for b in part.split(size) if len(b) >= 2]
    return [out[k] for k in torch.randperm(len(out), generator=generator).tolist()]


def embed(encoder: GraphEncoder, data: list[Data], size: int = 256) -> np.ndarray:
    """(N, 128) embeddings, dropout off."""
    encoder.eval()
    with torch.no_grad():
        parts = [encoder(Batch.from_data_list(data[k:k + size])) for k in range(0, len(data), size)]
    return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros((0, encoder.width))
