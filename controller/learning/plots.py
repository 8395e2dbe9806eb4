"""Predicted vs measured scatter with the +-10 % band (BRP-NAS Figure 1), one panel per predictor."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hwnas.predictors import predictor_class
from hwnas.predictors.evaluate import Result


def scatter(results: Sequence[Result], path: Path, target: str, band: float = 0.10) -> Path:
    """A PNG of the first seed's test predictions of each predictor that predicts values (not ranks)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on lab servers
    import matplotlib.pyplot as plt

    shown = {}
    for r in results:
        if r.predicted is not None and not predictor_class(r.kind).ranks_only:
            shown.setdefault(r.kind, r)
    if not shown:
        raise ValueError("no predictions to plot: run the bench with predictions kept")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4.2), squeeze=False)
    for ax, (kind, r) in zip(axes[0], shown.items(), strict=True):
        low, high = float(min(r.measured.min(), r.predicted.min())), float(max(r.measured.max(), r.predicted.max()))
        line = np.linspace(low, high, 50)
        ax.fill_between(line, line * (1 - band), line * (1 + band), color="tab:green", alpha=0.2,
                        label=f"±{band:.0%} of the prediction")
        ax.plot(line, line, color="tab:green", lw=1)
        ax.scatter(r.predicted, r.measured, s=2, alpha=0.3, color="tab:blue", rasterized=True)
        inside = r.metrics[f"brpnas_within_{round(band * 100)}pct"]
        ax.set(title=f"{kind}: {inside:.1%} within ±{band:.0%}", xlabel=f"predicted {target}",
               ylabel=f"measured {target}")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
