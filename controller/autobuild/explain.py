"""What a trained AutoBuild set says, as tables and plots: feature-value scores, module tables, subgraphs.

- ``feature_scores.csv`` / ``.png``: the FE-MLP score of every value of every feature category (kernel 3/5/7,
  expansion, stage, layer position, resolution), one bar per target equation (the paper's Figs. 9-10), and
  how many training nodes had the value (the plot leaves out values no training network had: their score
  is still the initial one);
- ``modules.csv``: each stage's best modules per equation with their scores;
- ``subgraphs.png``: for each equation, the training network it ranks highest drawn as its layer sequence,
  each layer coloured by the score of the best subgraph rooted there, the top-scored subgraph outlined.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hwnas.controller.autobuild.building import stage_modules
from hwnas.controller.autobuild.sequences import sequence_samples
from hwnas.controller.autobuild.training import TrainedSet


def value_counts(trained: TrainedSet) -> list[np.ndarray]:
    """Per category, how many training nodes have each value: a value no node had kept its initial score."""
    family, labelled = trained.family, trained.labelled
    codes = np.concatenate([g[0] for g in sequence_samples(family, labelled.encodings, labelled.resolutions).sequence])
    return [np.bincount(codes[:, c], minlength=len(values)) for c, values in enumerate(family.values)]


def feature_rows(trained: TrainedSet) -> list[dict]:
    """One row per equation, category and value: its FE-MLP score and how many training nodes had it."""
    rows, counts = [], value_counts(trained)
    for equation in trained.equations():
        scores = trained.predictor(equation).value_scores()
        for (category, values), seen in zip(scores.items(), counts, strict=True):
            rows += [{"equation": equation.text, "category": category, "value": v, "score": round(s, 6),
                      "training_nodes": int(n)} for (v, s), n in zip(values.items(), seen, strict=True)]
    return rows


def module_rows(trained: TrainedSet, top: int = 10) -> list[dict]:
    family, rows = trained.family, []
    for equation in trained.equations():
        predictor = trained.predictor(equation)
        for stage in range(len(family.stages)):
            for rank, m in enumerate(stage_modules(predictor, family, stage, trained.resolution)[:top], start=1):
                rows.append({"equation": equation.text, "stage": stage + 1, "rank": rank, "layers": len(m.module),
                             "module": family.describe(stage, m.module), "score": round(m.score, 4)})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Rows of one shape as a CSV with a header."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_features(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = list(dict.fromkeys(r["category"] for r in rows))
    equations = list(dict.fromkeys(r["equation"] for r in rows))
    fig, axes = plt.subplots(1, len(categories), figsize=(3.2 * len(categories), 3.4), squeeze=False)
    width = 0.8 / len(equations)
    for ax, category in zip(axes[0], categories, strict=True):
        values = list(dict.fromkeys(r["value"] for r in rows if r["category"] == category and r["training_nodes"]))
        for k, equation in enumerate(equations):
            score = {r["value"]: r["score"] for r in rows if r["category"] == category and r["equation"] == equation}
            ax.bar(np.arange(len(values)) + k * width, [score[v] for v in values], width, label=equation)
        ax.set_xticks(np.arange(len(values)) + width * (len(equations) - 1) / 2)
        ax.set_xticklabels(values, rotation=90 if len(values) > 6 else 0, fontsize=7 if len(values) > 6 else 9)
        ax.set_title(category)
    axes[0][0].set_ylabel("FE-MLP score")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_subgraphs(trained: TrainedSet, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    family, space, labelled = trained.family, trained.space, trained.labelled
    equations = trained.equations()
    longest = max(sum(len(m) for m in family.modules(x)) for x in labelled.encodings)  # layers
    fig, axes = plt.subplots(len(equations), 1, figsize=(max(8.0, 0.8 * longest), 2.1 * len(equations)),
                             squeeze=False)
    for ax, equation in zip(axes[:, 0], equations, strict=True):
        predictor = trained.predictor(equation)
        samples = sequence_samples(family, labelled.encodings, labelled.resolutions)
        best_network = int(np.argmax(predictor.predict(samples)))
        x = labelled.encodings[best_network]
        (scores,) = predictor.node_scores([samples.sequence[best_network]])
        best = scores.max(axis=1)
        root, hop = np.unravel_index(int(np.argmax(scores)), scores.shape)
        names = [family.stages[u].choices[c] for u, module in enumerate(family.modules(x)) for c in module]
        colours = plt.cm.viridis((best - best.min()) / (np.ptp(best) or 1.0))
        for i, name in enumerate(names):
            ax.add_patch(FancyBboxPatch((i * 1.2, 0), 1.0, 1.0, boxstyle="round,pad=0.02", color=colours[i]))
            ax.text(i * 1.2 + 0.5, 0.5, name, ha="center", va="center", fontsize=7, color="white")
            if i:
                ax.annotate("", (i * 1.2, 0.5), (i * 1.2 - 0.2, 0.5), arrowprops={"arrowstyle": "->"})
        first = max(0, int(root) - int(hop))
        ax.add_patch(FancyBboxPatch((first * 1.2 - 0.1, -0.12), (int(root) - first) * 1.2 + 1.2, 1.24,
                                    boxstyle="round,pad=0.02", fill=False, edgecolor="red", linewidth=2))
        for u, (start, end) in enumerate(family.stage_spans(x)):
            ax.text((start + end) * 0.6 + 0.5, 1.25, f"stage {u + 1}", ha="center", fontsize=8)
        ax.set_xlim(-0.3, len(names) * 1.2)
        ax.set_ylim(-0.3, 1.5)
        ax.axis("off")
        ax.set_title(f"{equation.text}: red, the top subgraph ({int(hop)}-hop, rooted at layer {int(root) + 1}, score "
                     f"{scores[root, hop]:.2f})\n{space.to_string(x)}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def explain(trained: TrainedSet, out: Path, top_modules: int = 10) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    features = feature_rows(trained)
    return [write_csv(out / "feature_scores.csv", features), plot_features(features, out / "feature_scores.png"),
            write_csv(out / "modules.csv", module_rows(trained, top_modules)),
            plot_subgraphs(trained, out / "subgraphs.png")]
