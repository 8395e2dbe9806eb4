"""``hwnas autobuild build``: networks built per equation, measured, and set against the training front.

For every target equation the built networks (and the exhaustive baseline's) get each objective's value:
accuracy from the table where it has the network, latency from the store after the device's agents measured
them (``measure``). A built network is *beyond the front* when no training network is at least as good in
every objective of its equation (directions from the weights' signs) and better in one; the training
networks it is set against are those at the input size it is built at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas.controller.autobuild.building import build, dominated, exhaustive, front, stage_modules
from hwnas.controller.autobuild.explain import write_csv
from hwnas.controller.autobuild.labels import objective_values, parse_objective
from hwnas.controller.autobuild.training import TrainedSet


@dataclass
class Report:
    text: str
    paths: list[Path] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


def _values(trained: TrainedSet, archs: list[list[int]], store) -> np.ndarray:
    """(networks, objectives) values of ``archs``; NaN where an objective has none."""
    space = trained.space
    out = np.full((len(archs), len(trained.manifest["objectives"])), np.nan)
    for k, text in enumerate(trained.manifest["objectives"]):
        objective = parse_objective(text)
        if objective.device_key and store is None:
            continue
        known = objective_values(objective, space, store)
        for i, x in enumerate(archs):
            hit = known.get((trained.resolution, space.network_key(x)))
            if hit is not None:
                out[i, k] = hit[1]
    return out


def build_report(trained: TrainedSet, top_k: int, networks: int, with_exhaustive: bool, db,
                 measure: Callable | None, out: Path, progress: Callable[[str], None] = lambda _: None) -> Report:
    space, family, labelled = trained.space, trained.family, trained.front_networks()
    names = labelled.names
    picks: list[tuple[str, str, int, list[int], float]] = []  # equation, method, rank, arch, score
    reduced = {}
    for equation in trained.equations():
        predictor = trained.predictor(equation)
        progress(f"{equation.text}: scoring the modules of {len(family.stages)} stages")
        built = build(predictor, family, space, trained.resolution, top_k, networks)
        picks += [(equation.text, "autobuild", r, x, s) for r, (x, s) in enumerate(built, start=1)]
        reduced[equation.text] = [[family.describe(u, m.module) for m in
                                   stage_modules(predictor, family, u, trained.resolution)[:top_k]]
                                  for u in range(len(family.stages))]
        if with_exhaustive:
            best = exhaustive(predictor, family, space, trained.resolution, networks)
            if best is None:
                progress(f"{equation.text}: no exhaustive baseline ({space.name} has {space.size():.3g} networks)")
            else:
                picks += [(equation.text, "exhaustive", r, x, s) for r, (x, s) in enumerate(best, start=1)]
    archs = [p[3] for p in picks]
    store = None
    if db is not None:
        from hwnas.controller.store import Store

        store = Store(db)
    try:
        if measure is not None:
            measure(store, space, archs)
        values = _values(trained, archs, store)
    finally:
        if store is not None:
            store.close()
    rows = []
    for (text, method, rank, x, score), v in zip(picks, values, strict=True):
        equation = next(e for e in trained.equations() if e.text == text)
        k = [names.index(n) for n in equation.names]
        signs = np.array([np.sign(w) for w, _ in equation.terms])
        beyond = ""
        if np.all(np.isfinite(v[k])):
            beyond = "yes" if not dominated((v[k] * signs)[None], labelled.values[:, k] * signs)[0] else "no"
        rows.append({"equation": text, "method": method, "rank": rank, "network": space.to_string(x),
                     "score": round(score, 4), **{n: (None if np.isnan(v[i]) else float(v[i]))
                                                  for i, n in enumerate(names)},
                     "equation_value": (None if not np.all(np.isfinite(v[k])) else
                                        round(float(equation.values(names, v[None], trained.labelled.values)[0]), 4)),
                     "beyond_training_front": beyond})
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(out / "built.csv", rows)]
    (out / "reduced_space.json").write_text(json.dumps({"space": space.name, "resolution": trained.resolution,
                                                        "top_k": top_k, "modules": reduced},
                                                       indent=1) + "\n")
    paths.append(out / "reduced_space.json")
    paths += _plots(trained, rows, out)
    return Report(_summary(trained, rows), paths, rows)


def _summary(trained: TrainedSet, rows: list[dict]) -> str:
    from hwnas.controller.reporting.tables import text_table

    names = trained.labelled.names
    table = [("equation", "method", "#", "network", *names, "beyond front")]
    for r in rows:
        table.append((r["equation"], r["method"], str(r["rank"]), r["network"],
                      *("-" if r[n] is None else f"{r[n]:.4g}" for n in names), r["beyond_training_front"] or "-"))
    lines = [text_table(table)]
    for equation in trained.equations():
        for method in ("autobuild", "exhaustive"):
            mine = [r for r in rows if r["equation"] == equation.text and r["method"] == method]
            judged = [r for r in mine if r["beyond_training_front"]]
            if mine:
                lines.append(f"{equation.text} [{method}]: {sum(r['beyond_training_front'] == 'yes' for r in judged)}"
                             f" of {len(judged)} judged network(s) on or beyond the front of "
                             f"{len(trained.front_networks().encodings)} training networks at {trained.resolution} px"
                             + (f" ({len(mine) - len(judged)} without every objective's value)"
                                if len(judged) < len(mine) else ""))
    return "\n".join(lines)


def _plots(trained: TrainedSet, rows: list[dict], out: Path) -> list[Path]:
    """One picture per (maximised, minimised) objective pair of the equations: the training networks, their
    front, and the built networks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labelled, paths = trained.front_networks(), []
    pairs = sorted({(good, bad) for e in trained.equations() for wg, good in e.terms for wb, bad in e.terms
                    if wg > 0 > wb})
    for good, bad in pairs:
        g, b = labelled.column(good), labelled.column(bad)
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.scatter(b, g, s=6, color="0.7", label=f"training networks ({len(g)})")
        edge = front(np.stack([g, -b], axis=1))
        edge = edge[np.argsort(b[edge])]
        ax.plot(b[edge], g[edge], color="0.3", lw=1, label="training front")
        markers = {"autobuild": "*", "exhaustive": "x"}
        for k, equation in enumerate(e for e in trained.equations() if {good, bad} <= set(e.names)):
            for method, marker in markers.items():
                mine = [r for r in rows if r["equation"] == equation.text and r["method"] == method
                        and r[good] is not None and r[bad] is not None]
                if mine:
                    ax.scatter([r[bad] for r in mine], [r[good] for r in mine], marker=marker, s=70,
                               color=f"C{k}", label=f"{method}: {equation.text}")
        ax.set_xlabel(bad)
        ax.set_ylabel(good)
        ax.legend(fontsize=6)
        fig.tight_layout()
        path = out / f"front_{good}_{bad}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
