"""Binary relation predictor (BRP-NAS §4.2): which of two architectures has the larger target?

A GCN shared by both inputs embeds each model (the BRP-NAS GCN up to its global-node readout); the two
embeddings, concatenated, go through one linear layer and a softmax over {first larger, second larger}.
Training pairs every two models of a batch in both orders, and minimises the KL divergence from the
softmax of the two standardised ground truths (``temperature`` scales them) to the prediction.

A pairwise model has no latency or accuracy scale, so ``predict`` returns a ranking score: the mean
probability that a model beats each of a fixed reference set of training models. Only rank metrics
(Spearman, Kendall tau) mean anything for it; ``ranks_only`` tells reports so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from hwnas.predictors.base import Predictor, register
from hwnas.predictors.gcn import GcnNet, tensors
from hwnas.predictors.samples import Samples


class PairNet(nn.Module):
    def __init__(self, encoder: GcnNet, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.relation = nn.Linear(2 * hidden, 2)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of (first larger, second larger) from two batches of embeddings."""
        return torch.log_softmax(self.relation(torch.cat([first, second], dim=-1)), dim=-1)


@register
class BinaryRelationPredictor(Predictor):
    kind = "brp"
    needs = ("adjacency", "node_features")
    description = "BRP-NAS binary relation predictor: a shared GCN + linear + softmax says which model is larger"
    ranks_only = True

    @classmethod
    def defaults(cls) -> dict:
        return {"hidden": 600, "layers": 4, "dropout": 0.002, "lr": 8e-4, "weight_decay": 5e-4, "batch_size": 16,
                "epochs": 100, "temperature": 1.0, "references": 64, "seed": 0, "global_node": -1}

    def _net(self, n_features: int) -> PairNet:
        c = self.config
        return PairNet(GcnNet(n_features, c["hidden"], c["layers"], c["dropout"], c["global_node"]), c["hidden"])

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        c = self.config
        torch.manual_seed(int(c["seed"]))
        generator = torch.Generator().manual_seed(int(c["seed"]))
        x, a = tensors(train)
        z = torch.as_tensor((train.y - train.y.mean()) / (train.y.std() or 1.0), dtype=torch.float32)
        self.net = self._net(x.shape[-1])
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        batch = int(c["batch_size"])
        first, second = torch.triu_indices(batch, batch, offset=1)
        first, second = torch.cat([first, second]), torch.cat([second, first])  # both orders of every pair
        self.net.train()
        for _epoch in range(int(c["epochs"])):
            order = torch.randperm(len(z), generator=generator)
            for start in range(0, len(z) - batch + 1, batch):
                index = order[start:start + batch]
                embedded = self.net.encoder.embed(x[index], a[index])
                truth = torch.softmax(torch.stack([z[index][first], z[index][second]], dim=-1) / c["temperature"],
                                      dim=-1)
                predicted = self.net(embedded[first], embedded[second])
                loss = nn.functional.kl_div(predicted, truth, reduction="batchmean")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.net.eval()
        pick = np.random.default_rng(int(c["seed"])).choice(len(train), min(c["references"], len(train)),
                                                            replace=False)
        self.references = train.take(pick)

    def _predict(self, samples: Samples) -> np.ndarray:
        with torch.no_grad():
            mine = self.net.encoder.embed(*tensors(samples))
            theirs = self.net.encoder.embed(*tensors(self.references))
            n, m = len(mine), len(theirs)
            log_p = self.net(mine.repeat_interleave(m, dim=0), theirs.repeat(n, 1))
            return log_p[:, 0].exp().reshape(n, m).mean(dim=1).numpy().astype(np.float64)

    def state(self) -> dict[str, np.ndarray]:
        return {**{f"net.{k}": v.numpy() for k, v in self.net.state_dict().items()},
                "ref.adjacency": self.references.adjacency, "ref.node_features": self.references.node_features}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        weights = {k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in arrays.items()
                   if k.startswith("net.")}
        self.net = self._net(weights["encoder.convs.0.linear.weight"].shape[1])
        self.net.load_state_dict(weights)
        self.net.eval()
        self.references = Samples(adjacency=arrays["ref.adjacency"], node_features=arrays["ref.node_features"])
