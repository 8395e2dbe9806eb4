"""Train and evaluate the PSC predictor on NB-201 networks labelled by the packaged accuracy table.

AutoGO pretrains its PSC predictor on CIFAR-10 benchmark families and applies it to any network; the
family with labels shipped here is NB-201. Networks are drawn at random (unconnected cells left out) and
split train / validation / test; the test figure is AutoGO's fold Spearman (see ``psc_data``), and the
whole-graph k-GNN trained on the same networks is the baseline of its Table 1.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.controller.autogo.database import SegmentDatabase
from hwnas.controller.autogo.psc_data import fold_samples, psc_samples, whole_graph_samples
from hwnas.controller.errors import SettingError
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.predictors import get_predictor

Progress = Callable[[Iterable, str], Iterable]


def labelled_nb201(n: int, column: str, seed: int) -> tuple[list[ComputationGraph], np.ndarray]:
    """``n`` random connected NB-201 networks (canonical CGs) and their ``column`` values."""
    from hwnas.controller.data import nb201_table
    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.nb201 import parse_arch_str

    rows = nb201_table()
    if column not in rows[0]:
        raise SettingError("accuracy_column", f"{column!r}: not in the NB-201 table; columns: {', '.join(rows[0])}")
    space = get_space("nb201")
    graphs, labels = [], []
    for k in np.random.default_rng(seed).permutation(len(rows)):
        row = rows[k]
        x = parse_arch_str(row["arch_str"])
        if row[column] in ("", "nan") or not space.has_network(x):
            continue
        graphs.append(space.to_graph(x).canonical())
        labels.append(float(row[column]))
        if len(graphs) == n:
            break
    return graphs, np.array(labels)


def train_psc(database: SegmentDatabase, out: Path, n_train: int, n_valid: int, n_test: int, per_graph: int,
              epochs: int, column: str, seed: int, baseline: bool = False,
              progress: Progress = lambda it, desc: it) -> dict[str, Any]:
    """Fit, evaluate and save a PSC predictor; returns (and writes) its evaluation."""
    for setting, value in (("train", n_train), ("valid", n_valid), ("test", n_test), ("per_graph", per_graph),
                           ("epochs", epochs)):
        if value < 1:
            raise SettingError(setting, f"must be >= 1, got {value}")
    rng = np.random.default_rng(seed)
    graphs, y = labelled_nb201(n_train + n_valid + n_test, column, seed)
    train_g, valid_g, test_g = graphs[:n_train], graphs[n_train:n_train + n_valid], graphs[n_train + n_valid:]
    train_y, valid_y, test_y = y[:n_train], y[n_train:n_train + n_valid], y[n_train + n_valid:]
    train = psc_samples(database, train_g, train_y, per_graph, rng, lambda it: progress(it, "decompose"))
    train = dataclasses.replace(train, family=np.full(len(train), "nb201", dtype=object))  # what the card records
    valid = psc_samples(database, valid_g, valid_y, per_graph, rng)
    folds = fold_samples(database, test_g)
    started = time.perf_counter()
    psc = get_predictor("psc", epochs=epochs, seed=seed).fit(train, valid)
    fit_s = time.perf_counter() - started
    rho = [float(spearmanr(psc.predict(fold), test_y).statistic) for fold in folds]
    report: dict[str, Any] = {"target": column, "train": n_train, "valid": n_valid, "test": len(test_g),
                              "train_samples": len(train), "per_graph": per_graph, "folds": len(folds),
                              "psc_fold_srcc": float(np.mean(rho)), "psc_fold_srcc_each": rho, "psc_fit_s": fit_s,
                              "seed": seed}
    if baseline:
        started = time.perf_counter()
        gnn = get_predictor("kgnn", hidden=64, layers=3, epochs=epochs, patience=8, lr_patience=4, batch_size=32,
                            seed=seed).fit(whole_graph_samples(train_g, train_y), whole_graph_samples(valid_g, valid_y))
        report["gnn_fit_s"] = time.perf_counter() - started
        report["gnn_srcc"] = float(spearmanr(gnn.predict(whole_graph_samples(test_g)), test_y).statistic)
    psc.card.target = column
    psc.card.bounds = [0.0, 100.0]  # an accuracy in %: never predicted outside it
    psc.card.metrics = {"fold_spearman": report["psc_fold_srcc"]}
    psc.card.notes = f"AutoGO PSC on NB-201 ({n_train} networks x {per_graph} decompositions)"
    psc.save(out)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
