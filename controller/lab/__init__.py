"""The library's face (``hwnas.Lab``): a lab's store and agents driven from Python, as the CLI drives them."""

from hwnas.controller.lab.handles import Campaign, CampaignSummary, ProfileJob, Search, SearchResult
from hwnas.controller.lab.lab import Device, Lab
from hwnas.controller.lab.predicting import DevicePredictor, load_predictor

__all__ = ["Campaign", "CampaignSummary", "Device", "DevicePredictor", "Lab", "ProfileJob", "Search", "SearchResult",
           "load_predictor"]
