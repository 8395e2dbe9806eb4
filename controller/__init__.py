"""hwnas controller: graph IR, search spaces, agent client, searches and the ``hwnas`` CLI."""

from device_agent import __version__

__all__ = ["__version__"]
