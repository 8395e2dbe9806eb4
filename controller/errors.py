"""The errors every room raises, and the library's (``hwnas.UserError``, ``hwnas.DeviceError``).

A ``UserError`` names the argument, field or setting as the code does; the CLI shows the flag that sets it
(``latency_max_ms`` -> ``--latency-max``), so library code never names flags. Both kinds are ``HwnasError``s.
"""

from __future__ import annotations


class HwnasError(Exception):
    """Anything hwnas raises on purpose, with a message that says what to do."""


class UserError(HwnasError, ValueError):
    """Something the caller can fix: ``field`` names it (an argument, field or setting), ``problem`` says what
    is wrong and how to fix it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(self.naming(field))

    def naming(self, name: str) -> str:
        """The message with the field called ``name`` (the CLI passes its flag)."""
        return f"{name}{'' if self.problem.startswith(':') else ' '}{self.problem}"


class SettingError(UserError):
    """A setting is wrong (a parameter or field of an algorithm, a plan or a space)."""

    @property
    def setting(self) -> str:
        return self.field


class DeviceError(HwnasError, RuntimeError):
    """A device could not measure: its agent does not answer, refused or failed the model, or was
    quarantined. ``device`` is the device key."""

    def __init__(self, device: str, problem: str) -> None:
        self.device, self.problem = device, problem
        super().__init__(f"device {device} {problem}")
