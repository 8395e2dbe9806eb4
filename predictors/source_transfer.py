"""Few-shot latency prediction for a new device from other devices' predictors (transfer by recombination).

Devices rank architectures alike far more than their absolute latencies agree: a new device's log-latency
is close to a linear mix of other devices' log-latencies. So each source device gets a ridge predictor on
the encoding (fitted on its own, plentiful, measurements), and the new device's predictor is a ridge on
the sources' standardised log-predictions, fitted on the few target measurements there are. With more
target samples the encoding itself becomes worth adding; which of the two designs is kept is decided by
the ridge's leave-one-out error on the target samples, so nothing extra is held out.

The fitted predictor holds the source ridges too: it predicts from the encoding alone, saves and loads
like any predictor, and a search can load it by the new device's key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.linear_model import RidgeCV

from predictors.base import Predictor, register
from predictors.linear import RidgeModel
from predictors.samples import Samples

ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


@register
class SourceTransferPredictor(Predictor):
    kind = "sources"
    needs = ("encoding",)
    description = "other devices' ridge predictors recombined for this device from a few samples (few-shot)"

    @classmethod
    def defaults(cls) -> dict:
        return {"source_alpha": 1.0}

    def use_sources(self, sources: Sequence[Samples]) -> SourceTransferPredictor:
        """The other devices' measurements (encoding and y, any architectures); call before ``fit``."""
        if not sources:
            raise ValueError("the sources predictor needs at least one source device's samples")
        for source in sources:
            source.require("encoding", "y")
            if np.any(source.y <= 0):
                raise ValueError("source latencies must be > 0 (the sources are mixed in log space)")
        self.sources = [RidgeModel(self.config["source_alpha"]).fit(s.encoding, np.log(s.y)) for s in sources]
        return self

    def _features(self, encoding: np.ndarray) -> np.ndarray:
        logs = np.column_stack([m.predict(encoding) for m in self.sources])
        return (logs - self.scaling[0]) / self.scaling[1]

    def _design(self, encoding: np.ndarray) -> np.ndarray:
        features = self._features(encoding)
        return np.column_stack([features, encoding]) if self.with_encoding[0] else features

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        if not getattr(self, "sources", None):
            raise ValueError("call use_sources(...) with the other devices' samples before fitting")
        if len(train) < 3 or np.any(train.y <= 0):
            raise ValueError("the sources predictor needs >= 3 target samples, all > 0")
        logs = np.column_stack([m.predict(train.encoding) for m in self.sources])
        self.scaling = np.stack([logs.mean(axis=0), logs.std(axis=0) + 1e-12])
        features = (logs - self.scaling[0]) / self.scaling[1]
        best = None
        for with_encoding, design in ((0, features), (1, np.column_stack([features, train.encoding]))):
            model = RidgeCV(alphas=ALPHAS).fit(design, np.log(train.y))  # leave-one-out error, for free
            if best is None or model.best_score_ > best[0]:
                best = (model.best_score_, with_encoding, model)
        _, with_encoding, model = best
        self.with_encoding = np.array([with_encoding])
        self.coef, self.intercept = model.coef_.astype(np.float64), np.array([model.intercept_])

    def _predict(self, samples: Samples) -> np.ndarray:
        return np.exp(self._design(samples.encoding) @ self.coef + self.intercept[0])

    def state(self) -> dict[str, np.ndarray]:
        return {"source_coef": np.stack([m.coef for m in self.sources]),
                "source_intercept": np.concatenate([m.intercept for m in self.sources]),
                "scaling": self.scaling, "with_encoding": self.with_encoding, "coef": self.coef,
                "intercept": self.intercept}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.sources = []
        for coef, intercept in zip(arrays["source_coef"], arrays["source_intercept"], strict=True):
            model = RidgeModel(self.config["source_alpha"])
            model.coef, model.intercept = coef, np.array([intercept])
            self.sources.append(model)
        self.scaling, self.with_encoding = arrays["scaling"], arrays["with_encoding"]
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]
