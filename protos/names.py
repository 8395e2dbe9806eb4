"""The names users and agents give things: device keys, campaign names and agent names.

They become folder names (a key's predictors live in ``DB.predictors/KEY/``), CSV cells and log lines, so
they are checked once, by the same rules, wherever they enter: on the command lines, on import, over the
wire and when a record is made. A device key is one path component that cannot climb (``..``) or hide (a
leading dot); a campaign or agent name is a label that may also hold spaces, ``:`` and ``@``
(``search:run-3``, ``imported:table.csv``, ``pi@lab``). Neither holds a path separator or a control
character, nor starts with a character a spreadsheet reads as a formula.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200
_KEY = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_LENGTH - 1}}}")
_LABEL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:@+ -]{{0,{MAX_LENGTH - 1}}}")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.:@+ -]")


class InvalidName(ValueError):
    """A name breaks its rule; the message names what it is, shows it, and gives an example."""


def _check(pattern: re.Pattern[str], what: str, allowed: str, example: str, text: str) -> str:
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise InvalidName(f"{what} must be 1-{MAX_LENGTH} characters of {allowed}, starting with a letter or "
                          f"digit (e.g. {example}), got {text!r}")
    return text


def device_key(text: str) -> str:
    """A device key (the queue agents of one kind serve), e.g. ``rpi4-cpu-ort``."""
    return _check(_KEY, "a device key", "letters, digits and _.-", "rpi4-cpu-ort", text)


def campaign_name(text: str) -> str:
    """A campaign's name, e.g. ``nb201-latbench``."""
    return _check(_LABEL, "a campaign name", "letters, digits, spaces and _.:@+-", "nb201-latbench", text)


def agent_name(text: str) -> str:
    """An agent's name as reports and records show it, e.g. ``lab-pi-07``."""
    return _check(_LABEL, "an agent name", "letters, digits, spaces and _.:@+-", "lab-pi-07", text)


def label_from(text: str) -> str:
    """A campaign name made from other text (``search:`` and a run folder's name): each character a label
    cannot hold becomes ``-``."""
    return _NOT_LABEL.sub("-", text)[:MAX_LENGTH]


def device_keys(text: str) -> list[str]:
    """A comma-separated list of device keys, each checked; empty items are dropped."""
    return [device_key(k) for k in text.split(",") if k]

