"""The AutoBuild predictor: fit on sequence graphs, rank networks, score feature values and modules.

Input: the ``sequence`` view (``Samples``), one graph per network whose nodes carry category codes (one
column per feature category, each an index into that category's values) and whose edges run forward.
Training maximises the differentiable Spearman correlation (``soft_rank``) between the label and the norm of
the graph embedding at every hop level (the loss is the sum over levels of ``1 - rho``), with AdamW (lr 1e-4,
weight decay 1e-5) and batches of 128, as the paper's §7.1. The paper trains 200 epochs on 3,000 networks
(about 4,700 steps); ``epochs`` 0 (the default) gives any training set about as many steps (at least 200
epochs): on 450 NAS-Bench-Macro networks 600 steps reached a held-out Spearman of 0.93-0.96, 3,000 steps
0.98. The paper standardises the labels; a rank loss does not see a monotone map of them, so they are used
as they are. The epoch with the best mean validation
correlation is kept.

After fitting, the mean and standard deviation of the norms at every hop level are recorded twice: over the
training graphs' embeddings (a network's score at that level is standardised by them, and ``predict`` is the
mean over levels) and over every node of every training graph (a module's score, the norm of its root
node's embedding at the module's hop level, is standardised by them, so modules of different sizes compare).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy import stats
from torch_geometric.data import Batch, Data

from hwnas.predictors.autobuild.model import AutoBuildNet
from hwnas.predictors.autobuild.soft_rank import soft_spearman
from hwnas.predictors.base import Predictor, register
from hwnas.predictors.samples import Samples

STEPS = 4000  # optimiser steps when epochs is 0: about the paper's 200 epochs of 3,000 networks in batches of 128


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads for a block, restored after. Batches of 8-20-node graphs are too small to split:
    on this 2-core machine 100 epochs on 450 NAS-Bench-Macro networks took 3.7 s with 1 thread and 64-68 s
    with 2 while another process was busy (the threads spin-wait for each other); alone, 3.7 s and 3.8 s.
    0: torch's own choice."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def to_data(graph: tuple[np.ndarray, np.ndarray]) -> Data:
    codes, edges = graph
    return Data(x=torch.as_tensor(np.asarray(codes), dtype=torch.long),
                edge_index=torch.as_tensor(np.asarray(edges), dtype=torch.long).reshape(2, -1))


def _batches(graphs: Sequence[tuple[np.ndarray, np.ndarray]], size: int = 512) -> list[Batch]:
    return [Batch.from_data_list([to_data(g) for g in graphs[k:k + size]]) for k in range(0, len(graphs), size)]


@register
class AutoBuildPredictor(Predictor):
    kind = "autobuild"
    needs = ("sequence",)
    description = "AutoBuild: GATv2 + FE-MLP on a network's layer sequence; ranks, feature scores, module scores"
    ranks_only = True

    @classmethod
    def defaults(cls) -> dict:
        return {"categories": [], "values": [], "hidden": 32, "layers": 4, "epochs": 0, "batch_size": 128,
                "lr": 1e-4, "weight_decay": 1e-5, "tau": 0.1, "seed": 0, "device": "auto", "threads": 1}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c = self.config
        if len(c["categories"]) != len(c["values"]) or not c["categories"]:
            raise ValueError("autobuild: categories and values must name the same feature categories (one list of "
                             f"values per category), got {len(c['categories'])} and {len(c['values'])}")
        for key in ("hidden", "layers", "batch_size"):
            if int(c[key]) < 1:
                raise ValueError(f"autobuild: {key} must be >= 1, got {c[key]}")
        self.net = AutoBuildNet([len(v) for v in c["values"]], int(c["hidden"]), int(c["layers"]))
        levels = int(c["layers"]) + 1
        self.graph_stats = np.tile([0.0, 1.0], (levels, 1))  # (levels, [mean, std]) of graph-embedding norms
        self.node_stats = np.tile([0.0, 1.0], (levels, 1))  # the same over every node

    # --- training ---------------------------------------------------------------------------------------
    def _check_codes(self, samples: Samples) -> None:
        sizes = [len(v) for v in self.config["values"]]
        for k, (codes, _) in enumerate(samples.sequence):
            codes = np.asarray(codes)
            if codes.ndim != 2 or codes.shape[1] != len(sizes):
                raise ValueError(f"autobuild: network {k} has node features of shape {codes.shape}; expected "
                                 f"(nodes, {len(sizes)}) for categories {self.config['categories']}")
            bad = np.flatnonzero((codes < 0).any(axis=0) | (codes >= np.array(sizes)).any(axis=0))
            if len(bad):
                category = self.config["categories"][bad[0]]
                raise ValueError(f"autobuild: network {k} has a {category} code outside its "
                                 f"{sizes[bad[0]]} values")

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        with torch_threads(int(self.config["threads"])):
            self._train(train, valid)

    def _train(self, train: Samples, valid: Samples | None) -> None:
        from hwnas.predictors.gnn import pick_device

        self._check_codes(train)
        c = self.config
        torch.manual_seed(int(c["seed"]))  # the initial weights follow the seed, not what ran before
        self.net = AutoBuildNet([len(v) for v in c["values"]], int(c["hidden"]), int(c["layers"]))
        rng = np.random.default_rng(int(c["seed"]))
        device = pick_device(c["device"])
        net = self.net.to(device)
        data = [to_data(g) for g in train.sequence]
        y = torch.as_tensor(train.y, dtype=torch.float32)
        check = valid if valid is not None else train
        optimiser = torch.optim.AdamW(net.parameters(), lr=float(c["lr"]), weight_decay=float(c["weight_decay"]))
        best, best_state = -np.inf, copy.deepcopy(net.state_dict())
        size = min(int(c["batch_size"]), len(data))
        for _ in range(self.epochs(len(data))):
            net.train()
            order = rng.permutation(len(data))
            for start in range(0, len(order) - size + 1, size):  # a rank loss needs full batches
                index = order[start:start + size]
                batch = Batch.from_data_list([data[i] for i in index]).to(device)
                levels = net(batch)
                target = y[index].to(device)
                loss = sum(1.0 - soft_spearman(levels[:, m], target, float(c["tau"]))
                           for m in range(levels.shape[1]))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            score = float(np.mean(self._level_correlations(check, device)))
            if score > best:
                best, best_state = score, copy.deepcopy(net.state_dict())
        net.load_state_dict(best_state)
        self.net = net.to("cpu").eval()
        self._record_stats(train)
        self.card.metrics["valid_spearman_mean_level"] = best

    def epochs(self, n_train: int) -> int:
        """The configured epochs, or (0) enough for about ``STEPS`` optimiser steps, at least 200 epochs."""
        if int(self.config["epochs"]) > 0:
            return int(self.config["epochs"])
        per_epoch = max(1, n_train // min(int(self.config["batch_size"]), n_train))
        return max(200, -(-STEPS // per_epoch))

    def _level_correlations(self, samples: Samples, device: torch.device) -> list[float]:
        levels = self._levels(samples, device)
        return [float(stats.spearmanr(levels[:, m], samples.y).statistic) for m in range(levels.shape[1])]

    def _levels(self, samples: Samples, device: torch.device | None = None) -> np.ndarray:
        self.net.eval()
        with torch.no_grad(), torch_threads(int(self.config["threads"])):
            return torch.cat([self.net(b.to(device or "cpu")).cpu() for b in _batches(samples.sequence)]).numpy()

    def _record_stats(self, train: Samples) -> None:
        levels = self._levels(train)
        self.graph_stats = np.stack([levels.mean(axis=0), levels.std(axis=0) + 1e-12], axis=1)
        norms = np.concatenate([n for n in self._node_norms(train.sequence)])
        self.node_stats = np.stack([norms.mean(axis=0), norms.std(axis=0) + 1e-12], axis=1)

    # --- using it ---------------------------------------------------------------------------------------
    def level_scores(self, samples: Samples) -> np.ndarray:
        """(networks, hop levels): each level's graph-embedding norm, standardised over the training set."""
        samples.require("sequence")
        self._check_codes(samples)
        return (self._levels(samples) - self.graph_stats[:, 0]) / self.graph_stats[:, 1]

    def _predict(self, samples: Samples) -> np.ndarray:
        return self.level_scores(samples).mean(axis=1)

    def _node_norms(self, graphs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        out = []
        self.net.eval()
        with torch.no_grad(), torch_threads(int(self.config["threads"])):
            for batch in _batches(graphs):
                norms = torch.stack([h.norm(dim=1) for h in self.net.hops(batch)], dim=1)
                counts = torch.bincount(batch.batch, minlength=batch.num_graphs).tolist()
                out += [part.numpy() for part in torch.split(norms, counts)]
        return out

    def node_scores(self, graphs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Per graph, (nodes, hop levels): the score of the m-hop subgraph rooted at each node, standardised
        per level over every node of the training graphs."""
        return [(n - self.node_stats[:, 0]) / self.node_stats[:, 1] for n in self._node_norms(graphs)]

    def value_scores(self) -> dict[str, dict[str, float]]:
        """{category: {value: FE-MLP score}}: what each feature value adds to a node's 0-hop embedding."""
        scores = self.net.features.value_scores()
        return {category: dict(zip(values, s, strict=True))
                for category, values, s in zip(self.config["categories"], self.config["values"], scores,
                                               strict=True)}

    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.net.state_dict().items()}
        return {**arrays, "graph_stats": self.graph_stats, "node_stats": self.node_stats}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.graph_stats, self.node_stats = np.asarray(arrays["graph_stats"]), np.asarray(arrays["node_stats"])
        self.net.load_state_dict({k.removeprefix("net."): torch.from_numpy(np.array(v)) for k, v in arrays.items()
                                  if k.startswith("net.")})
        self.net.eval()
