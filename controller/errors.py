"""The error for a bad setting, shared by every room: it names the setting as the code does, and the CLI
shows the flag that sets it (``latency_max_ms`` -> ``--latency-max``), so library code never names flags."""

from __future__ import annotations


class SettingError(ValueError):
    """A setting is wrong; ``setting`` names it (a parameter or field name), ``problem`` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting, self.problem = setting, problem
        super().__init__(self.naming(setting))

    def naming(self, name: str) -> str:
        """The message with the setting called ``name`` (the CLI passes its flag)."""
        return f"{name}{'' if self.problem.startswith(':') else ' '}{self.problem}"
