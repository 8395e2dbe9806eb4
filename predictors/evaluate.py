"""The BRP-NAS evaluation protocol: random 900 train / 100 validation / the rest test, over several seeds.

The caller drops architectures that do not exist as networks (NB-201's 341 unconnected cells) before
handing the samples over; everything else is split here, the same way for every predictor of one seed,
so the predictors of a table are compared on identical splits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.predictors.base import get_predictor, predictor_class
from hwnas.predictors.metrics import evaluate
from hwnas.predictors.samples import Samples


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split(n: int, n_train: int, n_valid: int, seed: int) -> Split:
    if n_train + n_valid >= n:
        raise ValueError(f"{n} architectures cannot give {n_train} train + {n_valid} validation + a test set")
    order = np.random.default_rng(seed).permutation(n)
    return Split(order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:])


@dataclass(frozen=True)
class Result:
    kind: str
    seed: int
    metrics: dict[str, float]
    predicted: np.ndarray | None = None  # the test set's predictions and targets, when asked for (plots)
    measured: np.ndarray | None = None


def bench(samples: Samples, kinds: Sequence[str], seeds: Iterable[int], n_train: int = 900, n_valid: int = 100,
          configs: dict[str, dict] | None = None,
          progress: Callable[[str, int], None] = lambda kind, seed: None,
          keep_predictions: bool = False, higher_is_better: bool = False) -> list[Result]:
    """Fit every predictor kind on every seed's split; metrics on that split's test set.

    ``progress(kind, seed)`` is called after each fit.
    """
    configs = configs or {}
    results = []
    for seed in seeds:
        parts = split(len(samples), n_train, n_valid, seed)
        train, valid, test = samples.take(parts.train), samples.take(parts.valid), samples.take(parts.test)
        for kind in kinds:
            config = dict(configs.get(kind, {}))
            if "seed" in predictor_class(kind).defaults():
                config.setdefault("seed", seed)
            predictor = get_predictor(kind, **config).fit(train, valid)
            predicted, outside = predictor.predict_flagged(test)  # a bench reports the share, it does not warn
            kept = (predicted, test.y) if keep_predictions else (None, None)
            metrics = {**evaluate(predicted, test.y, higher_is_better),
                       "outside_share": float(np.mean([bool(r) for r in outside]))}
            results.append(Result(kind, seed, metrics, *kept))
            progress(kind, seed)
    return results


def summarise(results: Sequence[Result]) -> dict[str, dict[str, tuple[float, float]]]:
    """{kind: {metric: (mean, standard deviation over seeds)}}, kinds in first-seen order."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in dict.fromkeys(r.kind for r in results):
        rows = [r.metrics for r in results if r.kind == kind]
        out[kind] = {m: (float(np.mean([row[m] for row in rows])), float(np.std([row[m] for row in rows])))
                     for m in rows[0]}
    return out
