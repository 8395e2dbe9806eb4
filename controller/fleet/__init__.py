"""The lab's agents as one long-lived object (``Fleet``), and what they look like right now (``survey``)."""

from hwnas.controller.fleet.agents import AgentEndpoint
from hwnas.controller.fleet.fleet import Fleet, FleetConfig, Outcome, run_campaign
from hwnas.controller.fleet.survey import AgentStatus, registered, survey

__all__ = ["AgentEndpoint", "AgentStatus", "Fleet", "FleetConfig", "Outcome", "registered", "run_campaign", "survey"]
