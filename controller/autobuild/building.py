"""Scoring modules and building networks from the best of them (AutoBuild), and the exhaustive baseline.

A module of stage ``u`` with ``l`` layers is scored by the norm of its last layer's embedding at hop level
``l - 1`` (standardised per level over the training nodes, so 2-layer and 4-layer modules compare): every
module of every stage is enumerated (9 + 27 + 27 for NAS-Bench-Macro, 7,371 per stage for OFA-MBv3). The
built networks are the products of each stage's top-K modules with the highest summed scores, one per
distinct network. The exhaustive baseline scores whole networks with the same predictor, all of them where
the space is small enough to enumerate.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from hwnas.controller.autobuild.sequences import Module, SequenceFamily, sequence_samples
from hwnas.controller.spaces.base import SearchSpace

EXHAUSTIVE_LIMIT = 200_000  # networks the exhaustive baseline scores at most


@dataclass(frozen=True)
class ScoredModule:
    stage: int
    module: Module
    score: float


def stage_modules(predictor, family: SequenceFamily, stage: int, resolution: int | None) -> list[ScoredModule]:
    """Every module of ``stage``, best first."""
    modules = list(family.stages[stage].modules())
    graphs = [family.module_graph(stage, m, resolution) for m in modules]
    scores = predictor.node_scores(graphs)
    scored = [ScoredModule(stage, m, float(s[-1, len(m) - 1])) for m, s in zip(modules, scores, strict=True)]
    return sorted(scored, key=lambda s: -s.score)


def build(predictor, family: SequenceFamily, space: SearchSpace, resolution: int | None, top_k: int,
          networks: int) -> list[tuple[list[int], float]]:
    """The ``networks`` distinct networks with the highest summed module score from each stage's top ``top_k``."""
    if top_k < 1 or networks < 1:
        raise ValueError(f"top_k and networks must be >= 1, got {top_k} and {networks}")
    tops = [stage_modules(predictor, family, u, resolution)[:top_k] for u in range(len(family.stages))]
    combos = heapq.nlargest(networks * 20, itertools.product(*tops), key=lambda c: sum(m.score for m in c))
    out, seen = [], set()
    for combo in combos:
        x = family.assemble([m.module for m in combo])
        key = space.network_key(x)
        if key not in seen and space.has_network(x):
            seen.add(key)
            out.append((x, sum(m.score for m in combo)))
        if len(out) == networks:
            break
    return out


def exhaustive(predictor, family: SequenceFamily, space: SearchSpace, resolution: int | None,
               networks: int) -> list[tuple[list[int], float]] | None:
    """The best ``networks`` distinct networks of the whole space by the predictor's score; None when the
    space has more than ``EXHAUSTIVE_LIMIT`` networks."""
    if space.size() > EXHAUSTIVE_LIMIT:
        return None
    seen, encodings = set(), []
    for x in space.enumerate():
        key = space.network_key(x)
        if key not in seen and space.has_network(x):
            seen.add(key)
            encodings.append(x)
    scores = predictor.predict(sequence_samples(family, encodings, resolution))
    best = np.argsort(-scores, kind="stable")[:networks]
    return [(encodings[i], float(scores[i])) for i in best]


def dominated(points: np.ndarray, by: np.ndarray) -> np.ndarray:
    """For each row of ``points`` (objectives to maximise), whether some row of ``by`` is at least as good in
    every objective and better in one."""
    ge = (by[None, :, :] >= points[:, None, :]).all(axis=2)
    gt = (by[None, :, :] > points[:, None, :]).any(axis=2)
    return (ge & gt).any(axis=1)


def front(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows (objectives to maximise)."""
    return np.flatnonzero(~dominated(points, points))

