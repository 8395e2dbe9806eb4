"""Light predictors on fixed-length views: FLOPs proxy, layer-wise sum, ridge, RBF SVR and their stack (LINAS).

Ridge is fitted in closed form with numpy; SVR and the stack's folds use scikit-learn, imported when they fit
(it takes over a second to import, and LINAS's default ridge should not pay it). The fitted state is a few
arrays (coefficients, support vectors), and predict is plain numpy on them, so a loaded predictor needs no
pickled estimator.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwnas.predictors.base import Predictor, register
from hwnas.predictors.samples import Samples


def _lstsq_line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.column_stack([x, np.ones_like(x)])
    return np.linalg.lstsq(design, y, rcond=None)[0]


@register
class FlopsProxy(Predictor):
    kind = "flops"
    needs = ("flops",)
    description = "latency linear in FLOPs (MACs), least squares"

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        self.line = _lstsq_line(train.flops.astype(np.float64), train.y)

    def _predict(self, samples: Samples) -> np.ndarray:
        return self.line[0] * samples.flops + self.line[1]

    def state(self) -> dict[str, np.ndarray]:
        return {"line": self.line}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.line = arrays["line"]


@register
class LayerwisePredictor(Predictor):
    kind = "layerwise"
    needs = ("layer_sum",)
    description = "sum of the device's measured per-layer latencies times one scale factor (BRP-NAS's layer-wise)"

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        """The scale s minimising the squared relative error sum((s x / y - 1)^2): closed form.

        Relative, because the figures of merit are: a least-squares line through the origin would let the
        few slowest networks set the scale.
        """
        ratio = train.layer_sum / train.y
        if not np.all(ratio > 0):
            raise ValueError("the layer-wise predictor needs a positive layer sum and target for every sample")
        self.scale = np.array([ratio.sum() / (ratio**2).sum()])

    def _predict(self, samples: Samples) -> np.ndarray:
        return self.scale[0] * samples.layer_sum

    def state(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.scale = arrays["scale"]


class RidgeModel:
    """y ~ X w + b minimising |y - X w - b|^2 + alpha |w|^2 (the intercept unpenalised), as scikit-learn's
    Ridge: centre X and y, solve (Xc' Xc + alpha I) w = Xc' yc, b = mean(y) - mean(X) w; in float64."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeModel:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        x_mean, y_mean = x.mean(axis=0), y.mean()
        xc = x - x_mean
        if xc.shape[1] > xc.shape[0]:  # fewer samples than features: the dual system is the smaller one
            gram = xc @ xc.T
            gram[np.diag_indices_from(gram)] += self.alpha
            coef = xc.T @ np.linalg.solve(gram, y - y_mean)
        else:
            gram = xc.T @ xc
            gram[np.diag_indices_from(gram)] += self.alpha
            coef = np.linalg.solve(gram, xc.T @ (y - y_mean))
        self.coef, self.intercept = coef, np.array([y_mean - x_mean @ coef], dtype=np.float64)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept[0]


class _SvrModel:
    """RBF epsilon-SVR on standardised y; predict is sum_i a_i exp(-gamma |x - s_i|^2) + b, in numpy."""

    def __init__(self, c: float, epsilon: float) -> None:
        self.c, self.epsilon = c, epsilon

    def fit(self, x: np.ndarray, y: np.ndarray) -> _SvrModel:
        from sklearn.svm import SVR

        self.y_mean, self.y_std = float(np.mean(y)), float(np.std(y) or 1.0)
        model = SVR(kernel="rbf", C=self.c, epsilon=self.epsilon, gamma="scale")
        model.fit(x, (y - self.y_mean) / self.y_std)
        self.support = model.support_vectors_.astype(np.float64)
        self.dual = model.dual_coef_.ravel().astype(np.float64)
        self.scalars = np.array([model.intercept_[0], model._gamma, self.y_mean, self.y_std], dtype=np.float64)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        intercept, gamma, y_mean, y_std = self.scalars
        sq = (np.sum(x**2, axis=1)[:, None] + np.sum(self.support**2, axis=1)[None, :]
              - 2.0 * x @ self.support.T)
        return (np.exp(-gamma * np.maximum(sq, 0.0)) @ self.dual + intercept) * y_std + y_mean


@register
class RidgePredictor(Predictor):
    kind = "ridge"
    needs = ("encoding",)
    description = "ridge regression on the fixed-length encoding (one-hot edge x op: the additive baseline)"

    @classmethod
    def defaults(cls) -> dict:
        return {"alpha": 1.0}

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        self.model = RidgeModel(self.config["alpha"]).fit(train.encoding, train.y)

    def _predict(self, samples: Samples) -> np.ndarray:
        return self.model.predict(samples.encoding)

    def state(self) -> dict[str, np.ndarray]:
        return {"coef": self.model.coef, "intercept": self.model.intercept}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.model = RidgeModel(self.config["alpha"])
        self.model.coef, self.model.intercept = arrays["coef"], arrays["intercept"]


@register
class SvrPredictor(Predictor):
    kind = "svr"
    needs = ("encoding",)
    description = "RBF support-vector regression on the fixed-length encoding"

    @classmethod
    def defaults(cls) -> dict:
        return {"C": 10.0, "epsilon": 0.01}

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        self.model = _SvrModel(self.config["C"], self.config["epsilon"]).fit(train.encoding, train.y)

    def _predict(self, samples: Samples) -> np.ndarray:
        return self.model.predict(samples.encoding)

    def state(self) -> dict[str, np.ndarray]:
        return {"support": self.model.support, "dual": self.model.dual, "scalars": self.model.scalars}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.model = _SvrModel(self.config["C"], self.config["epsilon"])
        self.model.support, self.model.dual, self.model.scalars = arrays["support"], arrays["dual"], arrays["scalars"]


@register
class StackedPredictor(Predictor):
    kind = "stacked"
    needs = ("encoding",)
    description = "ridge + SVR, combined by a ridge fitted on their out-of-fold predictions"

    @classmethod
    def defaults(cls) -> dict:
        return {"alpha": 1.0, "C": 10.0, "epsilon": 0.01, "folds": 5, "seed": 0}

    def _base(self) -> tuple[RidgePredictor, SvrPredictor]:
        c = self.config
        return RidgePredictor(alpha=c["alpha"]), SvrPredictor(C=c["C"], epsilon=c["epsilon"])

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        from sklearn.model_selection import KFold

        folds = KFold(self.config["folds"], shuffle=True, random_state=self.config["seed"])
        out_of_fold = np.zeros((len(train), 2))
        for fit_index, held_index in folds.split(train.encoding):
            for column, model in enumerate(self._base()):
                model.fit(train.take(fit_index))
                out_of_fold[held_index, column] = model._predict(train.take(held_index))  # no domain check: internal
        self.ridge, self.svr = (model.fit(train) for model in self._base())
        self.top = RidgeModel(1e-6).fit(out_of_fold, train.y)

    def _predict(self, samples: Samples) -> np.ndarray:
        # the stacked predictor checks its domain once, in ``predict``; its parts see the same samples
        return self.top.predict(np.column_stack([self.ridge._predict(samples), self.svr._predict(samples)]))

    def state(self) -> dict[str, np.ndarray]:
        return {**{f"ridge.{k}": v for k, v in self.ridge.state().items()},
                **{f"svr.{k}": v for k, v in self.svr.state().items()},
                "top.coef": self.top.coef, "top.intercept": self.top.intercept}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.ridge, self.svr = self._base()
        for prefix, model in (("ridge.", self.ridge), ("svr.", self.svr)):
            model.set_state({k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)})
        self.top = RidgeModel(1e-6)
        self.top.coef, self.top.intercept = arrays["top.coef"], arrays["top.intercept"]
