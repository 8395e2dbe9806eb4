"""Fit one AutoBuild predictor per target equation and keep them with what they were trained on.

A trained set is a folder: ``autobuild.json`` (space, input size, objectives, equations, the training
networks and their objective values, held-out correlations) and one predictor folder per equation (model
card + safetensors, as every hwnas predictor). ``build`` and ``explain`` read nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from hwnas.controller.autobuild.equations import Equation, parse_equation
from hwnas.controller.autobuild.labels import Labelled
from hwnas.controller.autobuild.sequences import SequenceFamily, sequence_family, sequence_samples
from hwnas.controller.spaces import get_space
from hwnas.predictors import get_predictor, load
from hwnas.predictors.metrics import MIN_HELD_OUT

MANIFEST = "autobuild.json"
MIN_NETWORKS = 50  # below this a rank loss on batches and a held-out tenth say nothing


@dataclass
class TrainedSet:
    folder: Path
    manifest: dict

    @property
    def space(self):
        return get_space(self.manifest["space"], resolution=self.manifest["resolution"])

    @property
    def family(self) -> SequenceFamily:
        return sequence_family(self.manifest["space"])

    @property
    def resolution(self) -> int:
        """The input size networks are built and measured at (the space's)."""
        return self.manifest["resolution"]

    @property
    def labelled(self) -> Labelled:
        space = self.space
        return Labelled(space.name, [space.from_string(s) for s in self.manifest["networks"]],
                        self.manifest["resolutions"], self.manifest["objectives_names"],
                        np.array(self.manifest["values"], dtype=np.float64))

    def front_networks(self) -> Labelled:
        """The training networks built networks compete with: those at the input size networks are built at
        (HELP's and live OFA labels mix sizes; a 160 px network is no rival for a 224 px one)."""
        labelled = self.labelled
        same = np.flatnonzero(np.array(labelled.resolutions) == self.resolution)
        return labelled.take(same) if len(same) else labelled

    def equations(self) -> list[Equation]:
        return [parse_equation(e["text"], self.manifest["objectives_names"]) for e in self.manifest["equations"]]

    def predictor(self, equation: Equation):
        entry = next(e for e in self.manifest["equations"] if e["text"] == equation.text)
        return load(self.folder / entry["folder"])


def open_trained(folder: Path) -> TrainedSet:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not an AutoBuild training folder (no {MANIFEST}); make one with "
                                "`hwnas autobuild train --out FOLDER`")
    return TrainedSet(folder, json.loads(path.read_text()))


def train(labelled: Labelled, objectives: Sequence[str], equations: Sequence[Equation], out: Path,
          resolution: int, config: dict | None = None, seed: int = 0, valid_share: float = 0.1,
          progress: Callable[[str], None] = lambda _: None) -> TrainedSet:
    """One predictor per equation on the labelled networks; a random ``valid_share`` is held out to choose
    the epoch and to report each hop level's Spearman correlation. ``resolution``: the input size networks
    are built at."""
    space = get_space(labelled.space, resolution=resolution)
    family = sequence_family(space.name)
    n = len(labelled.encodings)
    if n < MIN_NETWORKS:
        raise ValueError(f"AutoBuild needs at least {MIN_NETWORKS} labelled networks, has {n}")
    order = np.random.default_rng(seed).permutation(n)
    held = max(5, int(round(valid_share * n)))
    valid_index, train_index = np.sort(order[:held]), np.sort(order[held:])
    samples = sequence_samples(family, labelled.encodings, labelled.resolutions)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, equation in enumerate(equations):
        y = equation.values(labelled.names, labelled.values, labelled.values[train_index])
        predictor = get_predictor("autobuild", categories=family.categories, values=family.values,
                                  **{"seed": seed, **(config or {})})
        progress(f"equation {k + 1}/{len(equations)} {equation.text!r}: training on {len(train_index)} networks "
                 f"({predictor.epochs(len(train_index))} epochs)")
        predictor.fit(samples.with_y(y).take(train_index), samples.with_y(y).take(valid_index))
        rho: list[float] = []
        if len(valid_index) >= MIN_HELD_OUT:  # as predictors do: a Spearman of 15 networks says little
            levels = predictor.level_scores(samples.take(valid_index))
            rho = [float(stats.spearmanr(levels[:, m], y[valid_index]).statistic) for m in range(levels.shape[1])]
        predictor.card.target = equation.text
        predictor.card.metrics.update({f"valid_spearman_hop{m}": r for m, r in enumerate(rho)})
        folder = f"{k:02d}-{equation.slug()}"[:80]
        predictor.save(out / folder)
        entries.append({"text": equation.text, "folder": folder, "valid_spearman": rho, "held_out": len(valid_index)})
        progress(f"  {held_out_phrase(rho, len(valid_index))}")
    manifest = {"space": space.name, "resolution": resolution, "objectives": list(objectives),
                "objectives_names": labelled.names, "equations": entries,
                "networks": [space.to_string(x) for x in labelled.encodings], "resolutions": labelled.resolutions,
                "values": labelled.values.tolist(),
                "held_out": [space.to_string(labelled.encodings[i]) for i in valid_index]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return TrainedSet(out, manifest)


def held_out_phrase(rho: Sequence[float], held_out: int) -> str:
    """The held-out Spearman by hop level, or why there is none."""
    if not rho:
        return (f"{held_out} held-out networks: too few to score (at least {MIN_HELD_OUT} are needed; label more "
                "networks)")
    return f"held-out Spearman by hop level on {held_out} networks: {', '.join(f'{r:.3f}' for r in rho)}"
