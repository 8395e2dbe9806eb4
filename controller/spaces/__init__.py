"""Search spaces, looked up by name. Adding a space is adding a module and a line here."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hwnas.controller.spaces.base import SearchSpace
from hwnas.controller.spaces.candidate import Candidate, Measurable, ModelFile
from hwnas.controller.spaces.fbnet import FBNet
from hwnas.controller.spaces.hat import HatTransformer
from hwnas.controller.spaces.nas_bench_macro import NasBenchMacro
from hwnas.controller.spaces.nb101 import NasBench101
from hwnas.controller.spaces.nb201 import NasBench201
from hwnas.controller.spaces.ofa_mbv3 import OfaMobileNetV3
from hwnas.controller.spaces.ofa_resnet50 import OfaResNet50
from hwnas.controller.spaces.transformer import ElasticTransformer

SPACES: dict[str, Callable[..., SearchSpace]] = {
    FBNet.name: FBNet,
    NasBench101.name: NasBench101,
    NasBench201.name: NasBench201,
    NasBenchMacro.name: NasBenchMacro,
    OfaMobileNetV3.name: OfaMobileNetV3,
    OfaResNet50.name: OfaResNet50,
    ElasticTransformer.name: ElasticTransformer,
    HatTransformer.name: HatTransformer,
}

__all__ = ["SPACES", "Candidate", "Measurable", "ModelFile", "SearchSpace", "get_space"]


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered as ``name``; an unknown name is a ValueError naming the known ones."""
    try:
        factory = SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {sorted(SPACES)}") from None
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"search space {name!r} takes no option(s) {unknown}; it takes: {sorted(accepted)}")
    return factory(**options)
