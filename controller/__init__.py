"""hwnas controller: graph IR, search spaces, agent client, searches and the ``hwnas`` CLI."""

from importlib import metadata

try:
    __version__ = metadata.version("hwnas")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
