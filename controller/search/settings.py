"""The error every search algorithm raises for a bad setting, naming it (the CLI turns it into its flag)."""

from __future__ import annotations


class SettingError(ValueError):
    """An algorithm's setting is out of range; ``setting`` names it, ``problem`` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting} {problem}")
        self.setting, self.problem = setting, problem
