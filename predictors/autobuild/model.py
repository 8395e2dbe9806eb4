"""The AutoBuild network (paper §7.1): FE-MLP, then GATv2 message passing with residuals between hop levels.

- **FE-MLP**: one map per node-feature category (op, kernel, expansion, resolution, stage, layer position...)
  from the category's value to one scalar. Its only activation is an ``abs`` on the concatenated scalars,
  so each category's map is linear in the value's one-hot: a learned scalar per value plus the category's
  bias. ``|scalar|`` is that value's importance score, and the vector of them a node's 0-hop embedding.
- **Hops**: ``h^(m+1) = ReLU(GATv2(h^m)) + R(h^m)`` where ``R`` is the identity, or a linear map for the
  first layer (the 0-hop embedding has one entry per category, the others ``hidden``). Edges run forward
  along the network only, so a node's m-hop embedding sees exactly the m layers before it: the m-hop
  subgraph rooted at that node.
- **Graph embeddings**: at every hop level the mean of the node embeddings; its norm is that level's score
  of the network (trained to rank as the target does, ``soft_rank``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GATv2Conv, global_mean_pool


class FeatureMlp(nn.Module):
    """One linear map (one-hot value -> scalar) per category, then ``abs``: the 0-hop node embedding."""

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.maps = nn.ModuleList(nn.Linear(size, 1) for size in sizes)
        self.sizes = list(sizes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        columns = [m(nn.functional.one_hot(codes[:, c], size).float())
                   for c, (m, size) in enumerate(zip(self.maps, self.sizes, strict=True))]
        return torch.cat(columns, dim=1).abs()

    def value_scores(self) -> list[list[float]]:
        """Per category, the 0-hop entry each of its values gives a node: its importance score."""
        return [(m.weight[0] + m.bias).abs().tolist() for m in self.maps]


class AutoBuildNet(nn.Module):
    def __init__(self, sizes: Sequence[int], hidden: int = 32, layers: int = 4) -> None:
        super().__init__()
        self.features = FeatureMlp(sizes)
        dims = [len(sizes)] + [hidden] * layers
        self.convs = nn.ModuleList(GATv2Conv(a, b, heads=1) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.project = nn.Linear(len(sizes), hidden, bias=False)  # the first residual changes width

    def hops(self, batch: Batch) -> list[torch.Tensor]:
        """Node embeddings at hop levels 0..layers."""
        h = self.features(batch.x)
        out = [h]
        for k, conv in enumerate(self.convs):
            skip = self.project(h) if k == 0 else h
            h = torch.relu(conv(h, batch.edge_index)) + skip
            out.append(h)
        return out

    def forward(self, batch: Batch) -> torch.Tensor:
        """(graphs, hop levels): the norm of each graph's mean node embedding at each hop level."""
        return torch.stack([global_mean_pool(h, batch.batch).norm(dim=1) for h in self.hops(batch)], dim=1)
