"""hwnas: hardware-in-the-loop profiling for neural architecture search, as a library.

``lab = hwnas.Lab(store="lab.db", agents={"rpi4": "10.0.0.7:50151"}, tls="certs/")`` then
``lab.profile(model, device="rpi4").result().latency_ms``; ``docs/python.md`` has the whole guide.

``import hwnas`` loads nothing heavy: each name below is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "Lab": "hwnas.controller.lab",
    "Device": "hwnas.controller.lab",
    "ProfileJob": "hwnas.controller.lab",
    "Campaign": "hwnas.controller.lab",
    "CampaignSummary": "hwnas.controller.lab",
    "Search": "hwnas.controller.lab",
    "SearchResult": "hwnas.controller.lab",
    "DevicePredictor": "hwnas.controller.lab",
    "load_predictor": "hwnas.controller.lab",
    "MeasurementRecord": "hwnas.controller.store.records",
    "ClientTls": "hwnas.protos.auth",
    "LocalAgent": "hwnas.controller.fleet.local_agent",
    "HwnasError": "hwnas.controller.errors",
    "UserError": "hwnas.controller.errors",
    "SettingError": "hwnas.controller.errors",
    "DeviceError": "hwnas.controller.errors",
}
_PACKAGES = ("controller", "device_agent", "predictors", "protos")  # the design's folders, installed under hwnas
__all__ = ["Campaign", "CampaignSummary", "ClientTls", "Device", "DeviceError", "DevicePredictor", "HwnasError", "Lab",
           "LocalAgent", "MeasurementRecord", "ProfileJob", "Search", "SearchResult", "SettingError", "UserError",
           "__version__", "load_predictor"]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from hwnas.controller.errors import DeviceError, HwnasError, SettingError, UserError
    from hwnas.controller.fleet.local_agent import LocalAgent
    from hwnas.controller.lab import (
        Campaign,
        CampaignSummary,
        Device,
        DevicePredictor,
        Lab,
        ProfileJob,
        Search,
        SearchResult,
        load_predictor,
    )
    from hwnas.controller.store.records import MeasurementRecord
    from hwnas.protos.auth import ClientTls


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from hwnas.device_agent import __version__

        return __version__
    if name in _PACKAGES:
        return importlib.import_module(f"hwnas.{name}")
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'hwnas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
