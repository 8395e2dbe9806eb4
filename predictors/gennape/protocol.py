"""GENNAPE's transfer protocol (Mills et al. 2023, "Transferability"): a pretrained predictor on an unseen family.

Zero-shot: every member scores every network of the family; references are the family's own networks (their
graphs only, no labels), so each member's scores are standardised on the population it ranks. Fine-tuned: per
seed, the same random ``finetune`` networks for every method (the seed picks them), a copy of the pretrained
predictor fine-tuned on them, metrics on the remaining networks. Baselines come along for free: the k-GNN
and FLOPs members are the paper's baselines, and ``proxies`` (a zero-cost proxy's score per network, as a
table may carry) are ranked on the same networks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from hwnas.predictors.gennape.model import MEMBERS, GennapePredictor
from hwnas.predictors.metrics import evaluate
from hwnas.predictors.samples import Samples

ENSEMBLE = "gennape"


@dataclass(frozen=True)
class Transfer:
    method: str  # "gennape", a member (MEMBERS) or a proxy's name
    setting: str  # "zero-shot" or "fine-tuned"
    seed: int  # -1 for zero-shot
    metrics: dict[str, float]  # spearman, kendall_tau, ndcg_at_10; mae for gennape fine-tuned
    seconds: float = 0.0  # fine-tune + predict, for gennape


def _rank_metrics(score: np.ndarray, accuracy: np.ndarray) -> dict[str, float]:
    full = evaluate(score, accuracy, higher_is_better=True)
    return {k: full[k] for k in ("spearman", "kendall_tau", "ndcg_at_10")}


def transfer(pretrained: GennapePredictor, family: Samples, finetune: int = 50, seeds: Iterable[int] = range(5),
             proxies: Mapping[str, np.ndarray] | None = None,
             progress: Callable[[str], None] = lambda what: None) -> list[Transfer]:
    proxies = dict(proxies or {})
    if finetune and len(family) < finetune + 2:
        raise ValueError(f"the family has {len(family)} labelled networks: too few to fine-tune on {finetune} and "
                         "test on the rest")
    out = []
    started = time.perf_counter()
    scores = pretrained.member_scores(family, reference=family)
    seconds = time.perf_counter() - started
    for method, score in {**scores, **proxies}.items():
        out.append(Transfer(method, "zero-shot", -1, _rank_metrics(score, family.y),
                            seconds if method == ENSEMBLE else 0.0))
    progress("zero-shot")
    for seed in seeds if finetune else ():
        order = np.random.default_rng(seed).permutation(len(family))
        tune, rest = family.take(order[:finetune]), family.take(order[finetune:])
        started = time.perf_counter()
        tuned = copy.deepcopy(pretrained).finetune(tune)
        scores = tuned.member_scores(rest)
        value = tuned.calibration[0] + tuned.calibration[1] * scores[ENSEMBLE]
        seconds = time.perf_counter() - started
        for method, score in scores.items():
            metrics = _rank_metrics(score, rest.y)
            if method == ENSEMBLE:
                metrics["mae"] = float(np.mean(np.abs(np.clip(value, 0.0, 100.0) - rest.y)))
            out.append(Transfer(method, "fine-tuned", seed, metrics, seconds if method == ENSEMBLE else 0.0))
        for method, score in proxies.items():
            out.append(Transfer(method, "fine-tuned", seed, _rank_metrics(score[order[finetune:]], rest.y)))
        progress(f"seed {seed}")
    return out


def summary(results: list[Transfer]) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """{(method, setting): {metric: (mean, std over seeds)}}, methods in first-seen order."""
    out: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for key in dict.fromkeys((r.method, r.setting) for r in results):
        rows = [r.metrics for r in results if (r.method, r.setting) == key]
        out[key] = {m: (float(np.mean([row[m] for row in rows])), float(np.std([row[m] for row in rows])))
                    for m in rows[0]}
    return out


LABELS = {ENSEMBLE: "GENNAPE", "cl_fcm_t": "CL+FCM+T", "cl_t": "CL+T", "pairwise_fcm": "CL+Pairwise+FCM",
          "pairwise": "CL+Pairwise", "kgnn": "k-GNN", "flops": "FLOPs"}
assert set(LABELS) == {ENSEMBLE, *MEMBERS}
