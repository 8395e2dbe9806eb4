"""Checks as argparse ``type``s, for the command lines of both sides (``hwnas`` and ``hwnas-agent``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def arg_type(check: Callable[[str], T]) -> Callable[[str], T]:
    """``check`` (which raises ValueError saying what is wrong) as an argparse ``type``: a bad value is one
    usage line naming the flag, not a traceback."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = check.__name__
    return parse
