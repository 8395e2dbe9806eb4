"""Target equations: what a built network should maximise, as a weighted sum of standardised objectives.

``acc - 0.5*lat`` ranks networks by accuracy minus half a standard deviation of latency per standard
deviation of accuracy: each objective is standardised over the training networks first, so a weight says
how many of one objective's spreads trade for one of another's, whatever the units. Several equations with
different weights spread the built networks along the accuracy/latency front (the paper's Figs. 5, 18).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.errors import SettingError

_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*?\s*)?([A-Za-z_]\w*)\s*")


@dataclass(frozen=True)
class Equation:
    text: str
    terms: tuple[tuple[float, str], ...]  # (weight, objective name)

    @property
    def names(self) -> list[str]:
        return [name for _, name in self.terms]

    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "_", self.text.replace("-", " minus ").replace("+", " plus ")).strip("_")

    def values(self, names: Sequence[str], values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """The equation on (networks, objectives) ``values``, each objective standardised by ``reference``'s
        mean and spread (default: ``values`` themselves)."""
        reference = values if reference is None else reference
        out = np.zeros(len(values))
        for weight, name in self.terms:
            k = list(names).index(name)
            spread = reference[:, k].std() or 1.0
            out += weight * (values[:, k] - reference[:, k].mean()) / spread
        return out


def parse_equation(text: str, known: Sequence[str]) -> Equation:
    """``[+|-][W*]NAME ...``; SettingError naming the unknown objective or the part that does not parse."""
    terms, position = [], 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position or (terms and not match.group(1)):
            raise SettingError("equation", f"{text!r}: cannot read {text[position:]!r}; write e.g. 'acc - 0.5*lat'")
        sign = -1.0 if match.group(1) == "-" else 1.0
        weight = float(match.group(2)) if match.group(2) else 1.0
        name = match.group(3)
        if name not in known:
            raise SettingError("equation", f"{text!r} names {name!r}, which is not an objective; objectives: "
                                           f"{', '.join(known) or 'none given (an objective is NAME=SOURCE)'}")
        terms.append((sign * weight, name))
        position = match.end()
    if not terms:
        raise SettingError("equation", "is empty; write e.g. 'acc - 0.5*lat'")
    return Equation(text.strip(), tuple(terms))
