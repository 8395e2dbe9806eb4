"""Per-device latency predictors from Python: train from the lab's dataset, load a saved one, predict networks.

The predictors library (``hwnas.predictors``) takes feature arrays; a ``DevicePredictor`` knows its search
space, so it takes networks as the space names them (encodings, their strings, or candidates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.controller.errors import UserError

if TYPE_CHECKING:
    import numpy as np


class DevicePredictor:
    """A trained predictor with its space: ``predict(networks)`` in the target's units (latency in ms)."""

    def __init__(self, predictor: Any, space: str, folder: Path | None = None) -> None:
        self.predictor, self.space, self.folder = predictor, space, folder

    def __repr__(self) -> str:
        card = self.predictor.card
        return f"DevicePredictor({card.kind!r}, device={card.device_key!r}, space={self.space!r})"

    @property
    def device(self) -> str:
        return self.predictor.card.device_key

    @property
    def metrics(self) -> Mapping[str, float]:
        """Held-out scores from training (Spearman, MAPE, within ±10 %), where there were enough."""
        return dict(self.predictor.card.metrics)

    def predict(self, networks: Sequence[Any]) -> np.ndarray:
        """Predictions for ``networks``: encodings (lists of ints), their strings, or ``Candidate``s."""
        from hwnas.controller.learning.data import space_samples
        from hwnas.controller.spaces import get_space

        space = get_space(self.space)
        encodings = []
        for k, network in enumerate(networks):
            if isinstance(network, str):
                try:
                    encodings.append(space.from_string(network))
                except ValueError as exc:
                    raise UserError("networks", f"[{k}] {network!r} is not a {self.space} network: {exc}") from None
            elif hasattr(network, "encoding"):
                encodings.append(list(network.encoding))
            else:
                encodings.append([int(v) for v in network])
        return self.predictor.predict(space_samples(space, encodings, views=set(self.predictor.needs)))


def train(store, target: str, device: str, kind: str, space: str | None, seed: int,
          sources: Sequence[str]) -> DevicePredictor:
    """``hwnas predictor train``: fit on the device's measurements, score on a held-out tenth, save."""
    from hwnas.controller.learning.jobs import train_from_store
    from hwnas.predictors import load

    try:
        folder, _, learned = train_from_store(store, target, device, kind, seed=seed, sources=sources, space=space)
    except (KeyError, ValueError) as exc:
        raise UserError("device" if "measurement" in str(exc) else "kind", str(exc).strip("'\"")) from None
    return DevicePredictor(load(folder), learned, folder)


def load_predictor(folder: str | Path, space: str | None = None) -> DevicePredictor:
    """A predictor saved by ``train_predictor`` or ``hwnas predictor train`` (its folder)."""
    from hwnas.predictors import load

    try:
        predictor = load(Path(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError("folder", f"{folder}: {exc}") from None
    learned = space or predictor.card.space
    if not learned:
        raise UserError("space", f"{folder}'s card does not say which space it learned; pass space=...")
    return DevicePredictor(predictor, learned, Path(folder))
