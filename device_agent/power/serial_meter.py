"""A USB power meter on a serial port: the RDTech UM24C / UM25C / UM34C (through ``pyserial``).

These ~$15 meters sit between a board's USB supply and the board, and talk over a Bluetooth serial link
(``rfcomm bind`` gives ``/dev/rfcomm0``; on Windows a COM port), 9600 baud. The protocol, as documented by
the sigrok project: send the byte ``0xF0``, the meter answers one 130-byte snapshot, big-endian, with the
model id at offset 0 (0x0963 UM24C, 0x09C9 UM25C, 0x0D4C UM34C) and the power in mW as 4 bytes at offset 6.
The meter answers a few times a second at best, so it suits long windows: the record's sampling period is
the one the answers actually came at. ``--power-source serial:PORT`` (opt-in: a port is never opened
unless named).
"""

from __future__ import annotations

import threading

from hwnas.device_agent.power.base import Availability, PowerMeter, PowerSource
from hwnas.device_agent.power.sampling import SampledMeter

REQUEST = b"\xf0"
SNAPSHOT_BYTES = 130
MODELS = {0x0963: "UM24C", 0x09C9: "UM25C", 0x0D4C: "UM34C"}
BAUD = 9600
ANSWER_TIMEOUT_S = 2.0
PERIOD_S = 0.05  # asked for; the meter's own answer time sets the real one


def parse_snapshot(data: bytes) -> tuple[str, float]:
    """(model, watts) of one answer; ValueError saying what is wrong with it."""
    if len(data) != SNAPSHOT_BYTES:
        raise ValueError(f"answered {len(data)} bytes within {ANSWER_TIMEOUT_S:g} s, not a {SNAPSHOT_BYTES}-byte "
                         "snapshot")
    model = MODELS.get(int.from_bytes(data[0:2], "big"))
    if model is None:
        raise ValueError(f"answered model id 0x{int.from_bytes(data[0:2], 'big'):04x}, not one of "
                         f"{', '.join(f'0x{k:04x} {v}' for k, v in MODELS.items())}")
    return model, int.from_bytes(data[6:10], "big") / 1e3


class UmMeterPort:
    """The open port; one request and answer at a time."""

    def __init__(self, port: str) -> None:
        import serial

        self._serial = serial.Serial(port, BAUD, timeout=ANSWER_TIMEOUT_S)
        self._lock = threading.Lock()

    def read(self) -> tuple[str, float]:
        with self._lock:
            self._serial.reset_input_buffer()
            self._serial.write(REQUEST)
            return parse_snapshot(self._serial.read(SNAPSHOT_BYTES))

    def watts(self) -> float:
        return self.read()[1]

    def close(self) -> None:
        self._serial.close()


class SerialMeterSource(PowerSource):
    name = "serial"
    opt_in = True
    argument = "PORT"

    def __init__(self, port: str = "") -> None:
        self.port_name = port
        self._port: UmMeterPort | None = None

    def probe(self) -> Availability:
        if not self.port_name:
            return Availability(False, "name the meter's port: --power-source serial:/dev/rfcomm0 (or serial:COM5)")
        try:
            import serial
        except ImportError:
            return Availability(False, "pyserial is not installed (pip install 'hwnas[agent-serial]')")
        try:
            port = UmMeterPort(self.port_name)
        except (serial.SerialException, OSError) as exc:
            return Availability(False, f"cannot open {self.port_name}: {exc}")
        try:
            model, watts = port.read()
        except (ValueError, serial.SerialException, OSError) as exc:
            port.close()
            return Availability(False, f"the meter on {self.port_name}: {exc}")
        self._port = port
        return Availability(True, f"RDTech {model} on {self.port_name} (reads {watts:.3f} W now)")

    def open(self) -> PowerMeter:
        assert self._port is not None
        return SampledMeter(self._port.watts, f"serial:{self.port_name}", PERIOD_S)
