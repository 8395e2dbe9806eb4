"""Few-shot latency prediction for a new device from other devices' predictors (transfer by recombination).

Devices rank architectures alike far more than their absolute latencies agree, so a new device's latency is
close to a linear mix of other devices'. Each source device gets two ridge predictors on the encoding (fitted
on its own, plentiful, measurements): one of its log-latency, one of its latency. The new device's predictor
is a ridge on the sources' standardised predictions, fitted on the few target measurements there are, in one
of four designs: the log predictions mixed for the target's log latency (devices that scale alike), or the
latencies mixed for its latency with non-negative weights (devices whose latency adds up over layers, as
mobile CPUs' does: a non-negative mix of sums of op costs is a sum of op costs; a free mix of 26 sources on
10 samples ranked one of HELP's phones backwards), each alone or with the encoding added (worth it once
there are more target samples).
Which design is kept is decided on the target samples themselves, by the rank correlation of each design's
cross-validated predictions (leave-one-out up to 10 samples, 10-fold beyond; on a tie, their relative
error): scale-free, so a log and a linear fit are judged alike, and nothing extra is held out. Measured
leave-one-device-out on three families (docs/benchmarks.md): the linear designs lift the mobile CPUs most.

The fitted predictor holds the source ridges too: it predicts from the encoding alone, saves and loads
like any predictor, and a search can load it by the new device's key. A predictor saved before the linear
designs existed loads as the log design it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from hwnas.predictors.base import Predictor, register
from hwnas.predictors.linear import RidgeModel
from hwnas.predictors.samples import Samples

ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
LOG, LINEAR = 0, 1  # what the sources' predictions and the target's fit are: log latency, or latency
DESIGNS = ((LOG, 0), (LOG, 1), (LINEAR, 0), (LINEAR, 1))  # (space, with the encoding), in order of preference
FOLDS = 10


@register
class SourceTransferPredictor(Predictor):
    kind = "sources"
    needs = ("encoding",)
    description = "other devices' ridge predictors recombined for this device from a few samples (few-shot)"

    @classmethod
    def defaults(cls) -> dict:
        return {"source_alpha": 1.0, "designs": "all"}  # designs "log": the log designs only, as before

    def _designs(self) -> tuple[tuple[int, int], ...]:
        if self.config["designs"] not in ("all", "log"):
            raise ValueError(f"sources: designs must be 'all' or 'log', got {self.config['designs']!r}")
        return DESIGNS if self.config["designs"] == "all" else DESIGNS[:2]

    def use_sources(self, sources: Sequence[Samples]) -> SourceTransferPredictor:
        """The other devices' measurements (encoding and y, any architectures); call before ``fit``."""
        if not sources:
            raise ValueError("the sources predictor needs at least one source device's samples")
        for source in sources:
            source.require("encoding", "y")
            if np.any(source.y <= 0):
                raise ValueError("source latencies must be > 0 (the sources are mixed in log space)")
        alpha = self.config["source_alpha"]
        self.sources = ([RidgeModel(alpha).fit(s.encoding, np.log(s.y)) for s in sources],
                        [RidgeModel(alpha).fit(s.encoding, s.y) for s in sources])
        return self

    def _raw(self, encoding: np.ndarray, space: int) -> np.ndarray:
        return np.column_stack([m.predict(encoding) for m in self.sources[space]])

    def log_predictions(self, encoding: np.ndarray) -> np.ndarray:
        """(N, sources): each source device's predicted log latency; what ``hwnas.predictors.selection`` spreads."""
        return self._raw(encoding, LOG)

    def _design(self, encoding: np.ndarray, space: int, with_encoding: int) -> np.ndarray:
        features = (self._raw(encoding, space) - self.scaling[space, 0]) / self.scaling[space, 1]
        return np.column_stack([features, encoding]) if with_encoding else features

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        if not getattr(self, "sources", None):
            raise ValueError("call use_sources(...) with the other devices' samples before fitting")
        if len(train) < 3 or np.any(train.y <= 0):
            raise ValueError("the sources predictor needs >= 3 target samples, all > 0")
        raws = [self._raw(train.encoding, space) for space in (LOG, LINEAR)]
        self.scaling = np.stack([np.stack([r.mean(axis=0), r.std(axis=0) + 1e-12]) for r in raws])
        targets = (np.log(train.y), train.y)
        folds = KFold(min(len(train), FOLDS), shuffle=True, random_state=0)
        best = None
        for space, with_encoding in self._designs():
            design = self._design(train.encoding, space, with_encoding)
            alpha = RidgeCV(alphas=ALPHAS).fit(design, targets[space]).alpha_
            model = Ridge(alpha=alpha, positive=space == LINEAR)  # a device's costs: others' costs added up
            held_out = cross_val_predict(model, design, targets[space], cv=folds)
            rank = spearmanr(held_out, train.y)[0] if np.ptp(held_out) > 0 else -1.0
            latency = np.exp(held_out) if space == LOG else held_out
            # ranks first; on a tie (few samples rank alike) the smaller relative error
            score = (rank if np.isfinite(rank) else -1.0, -float(np.mean(np.abs(latency - train.y) / train.y)))
            if best is None or score > best[0]:
                best = (score, space, with_encoding, model.fit(design, targets[space]))
        _, space, with_encoding, model = best
        self.design = np.array([space, with_encoding])
        self.coef, self.intercept = model.coef_.astype(np.float64), np.array([model.intercept_])
        self.floor = np.array([0.5 * float(train.y.min())])  # a linear mix can dip below zero far from the data

    def _predict(self, samples: Samples) -> np.ndarray:
        space, with_encoding = (int(v) for v in self.design)
        fitted = self._design(samples.encoding, space, with_encoding) @ self.coef + self.intercept[0]
        return np.exp(fitted) if space == LOG else np.maximum(fitted, self.floor[0])

    def state(self) -> dict[str, np.ndarray]:
        logs, linears = self.sources
        return {"source_coef": np.stack([m.coef for m in logs]),
                "source_intercept": np.concatenate([m.intercept for m in logs]),
                "linear_source_coef": np.stack([m.coef for m in linears]),
                "linear_source_intercept": np.concatenate([m.intercept for m in linears]),
                "scalings": self.scaling, "design": self.design, "coef": self.coef, "intercept": self.intercept,
                "floor": self.floor}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        def ridges(coefs: np.ndarray, intercepts: np.ndarray) -> list[RidgeModel]:
            models = []
            for coef, intercept in zip(coefs, intercepts, strict=True):
                model = RidgeModel(self.config["source_alpha"])
                model.coef, model.intercept = coef, np.array([intercept])
                models.append(model)
            return models

        logs = ridges(arrays["source_coef"], arrays["source_intercept"])
        if "design" in arrays:
            self.sources = (logs, ridges(arrays["linear_source_coef"], arrays["linear_source_intercept"]))
            self.scaling, self.design, self.floor = arrays["scalings"], arrays["design"], arrays["floor"]
        else:  # saved before the linear designs: the log design, with or without the encoding
            self.sources = (logs, [])
            self.scaling = np.stack([arrays["scaling"], arrays["scaling"]])
            self.design, self.floor = np.array([LOG, int(arrays["with_encoding"][0])]), np.array([0.0])
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]
