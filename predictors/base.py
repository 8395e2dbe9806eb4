"""The one predictor interface: fit / predict / save / load, a model card, and a registry by name.

A saved predictor is a folder with ``card.json`` (what it is, what data it saw, how well it did) and
``weights.safetensors`` (named arrays). Loading reads JSON and safetensors only: nothing is unpickled, so
a predictor file from another lab cannot run code.
"""

from __future__ import annotations

import datetime
import importlib
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from hwnas.predictors.domain import learn, outside
from hwnas.predictors.samples import FEATURE_VERSION, Samples

CARD = "card.json"
WEIGHTS = "weights.safetensors"


@dataclass
class ModelCard:
    kind: str
    config: dict[str, Any]
    device_key: str = ""
    target: str = ""  # what y was, e.g. "latency_ms" or a table column
    space: str = ""  # the search space whose networks it learned, where it learned one
    data_sha256: str = ""
    n_train: int = 0
    feature_version: int = FEATURE_VERSION
    metrics: dict[str, float] = field(default_factory=dict)
    created_utc: str = ""
    notes: str = ""
    domain: dict[str, Any] = field(default_factory=dict)  # what it was trained on (predictors.domain.learn)
    bounds: list[float] | None = None  # predictions are clipped to [low, high] (accuracy: [0, 100])


class OutsideDomainWarning(UserWarning):
    """Some architectures lie outside what the predictor was trained on; their predictions are unvouched for."""


class Predictor(ABC):
    """Features in, predictions out. Subclasses set ``kind`` and ``needs`` and keep their state as arrays."""

    kind: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]  # the Samples views fit and predict read
    description: ClassVar[str]
    ranks_only: ClassVar[bool] = False  # predictions are ranking scores, not values of the target

    def __init__(self, **config: Any) -> None:
        self.config = {**self.defaults(), **config}
        unknown = set(config) - set(self.defaults())
        if unknown:
            raise ValueError(f"{self.kind}: unknown option(s) {sorted(unknown)}; known: {sorted(self.defaults())}")
        self.card = ModelCard(kind=self.kind, config=self.config)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {}

    def fit(self, train: Samples, valid: Samples | None = None) -> Predictor:
        train.require(*self.needs, "y")
        if valid is not None:
            valid.require(*self.needs, "y")
        self._fit(train, valid)
        self.card.domain = learn(train, self.needs)
        self.card.data_sha256 = train.fingerprint()
        self.card.n_train = len(train)
        self.card.created_utc = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return self

    def predict(self, samples: Samples) -> np.ndarray:
        """Predictions in the target's units, clipped to the card's bounds; an ``OutsideDomainWarning`` says
        how many architectures lie outside the training domain (``predict_flagged`` says which and why)."""
        predicted, reasons = self.predict_flagged(samples)
        flagged = [r for r in reasons if r]
        if flagged:
            warnings.warn(f"{self.kind} predictor: {len(flagged)} of {len(reasons)} architecture(s) lie outside "
                          f"what it was trained on, e.g. {flagged[0]}", OutsideDomainWarning, stacklevel=2)
        return predicted

    def predict_flagged(self, samples: Samples) -> tuple[np.ndarray, list[str]]:
        """Predictions and, for each architecture, why it lies outside the training domain ("" if inside)."""
        samples.require(*self.needs)
        predicted = np.asarray(self._predict(samples), dtype=np.float64)
        if self.card.bounds is not None:
            predicted = np.clip(predicted, *self.card.bounds)
        return predicted, outside(self.card.domain, samples) if self.card.domain else [""] * len(samples)

    @abstractmethod
    def _fit(self, train: Samples, valid: Samples | None) -> None: ...

    @abstractmethod
    def _predict(self, samples: Samples) -> np.ndarray: ...

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Everything predict needs, as named arrays."""

    @abstractmethod
    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None: ...

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.state().items()}, str(folder / WEIGHTS))
        (folder / CARD).write_text(json.dumps(asdict(self.card), indent=2, sort_keys=True) + "\n")
        return folder


PREDICTORS: dict[str, type[Predictor]] = {}  # filled by @register as the modules below are imported
# kind -> module defining it, imported on first use, so asking for "ridge" never loads torch.
KINDS = {kind: f"{__package__}.{module}" for kind, module in {
    "flops": "linear", "layerwise": "linear", "ridge": "linear", "svr": "linear", "stacked": "linear", "gcn": "gcn",
    "kgnn": "gnn", "gcn-cg": "gnn", "gin": "gnn", "gatv2": "gnn", "brp": "brp", "gennape": "gennape.model",
    "psc": "psc", "sources": "source_transfer", "autobuild": "autobuild.predictor"}.items()}


def register(cls: type[Predictor]) -> type[Predictor]:
    PREDICTORS[cls.kind] = cls
    return cls


def predictor_class(kind: str) -> type[Predictor]:
    if kind not in KINDS:
        raise ValueError(f"unknown predictor {kind!r}; known: {sorted(KINDS)}")
    importlib.import_module(KINDS[kind])
    return PREDICTORS[kind]


def transfers(kind: str) -> bool:
    """Whether predictors of ``kind`` learn from other devices' samples (``use_sources``) before fitting."""
    return hasattr(predictor_class(kind), "use_sources")


def get_predictor(kind: str, **config: Any) -> Predictor:
    return predictor_class(kind)(**config)


def load(folder: Path) -> Predictor:
    """A saved predictor; a card from a different feature version is refused (its inputs meant other things)."""
    try:
        card = ModelCard(**json.loads((folder / CARD).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{folder} is not a saved hwnas predictor: {exc}") from None
    if card.feature_version != FEATURE_VERSION:
        raise ValueError(f"{folder} was trained on feature version {card.feature_version}; this hwnas has "
                         f"{FEATURE_VERSION}: retrain it")
    predictor = get_predictor(card.kind, **card.config)
    predictor.set_state(load_file(str(folder / WEIGHTS)))
    predictor.card = card
    return predictor

