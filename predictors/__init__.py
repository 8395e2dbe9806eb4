"""hwnas predictors: a pure ML library (features in, predictions out). It never imports ``controller``.

``get_predictor(kind)`` looks a predictor up by name (``KINDS``; a kind's module, torch for the graph
ones, is imported on first use); ``load(folder)`` reads a saved one (JSON card + safetensors weights,
never a pickle).
"""

from hwnas.predictors.base import (
    KINDS,
    ModelCard,
    OutsideDomainWarning,
    Predictor,
    get_predictor,
    load,
    predictor_class,
    register,
)
from hwnas.predictors.samples import FEATURE_VERSION, Samples

__all__ = ["FEATURE_VERSION", "KINDS", "ModelCard", "OutsideDomainWarning", "Predictor", "Samples", "get_predictor",
           "load", "predictor_class", "register"]
