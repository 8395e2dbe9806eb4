"""``adb[:SERIAL]``: the tool runs on an Android device through Google's ``adb`` client.

Every call is the maintained ``adb`` binary (``-s SERIAL``; shell protocol v2, so a remote command's exit
status comes back). Models go to ``/data/local/tmp/hwnas-TAG-RANDOM/`` and are removed afterwards. What the
device is comes from ``getprop`` (model, SoC, Android version, ABI) and /proc; the CPU mask the tool is
pinned to (``taskset``) defaults to the cores with the highest maximum frequency (the big cores), as LiteRT's
benchmark guide advises. The battery's temperature and Android's thermal status are read before each run;
its current and voltage, where the kernel exposes them, are the phone's power source.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from hwnas.device_agent.power.base import Availability, PowerMeter, PowerSource
from hwnas.device_agent.power.sampling import SampledMeter
from hwnas.device_agent.transports.base import CommandResult, DeviceFacts, ProcessCommand, Transport, TransportError

SCRATCH_ROOT = "/data/local/tmp"
BATTERY = "/sys/class/power_supply/battery"
# What adb prints when the device, not the command, is the problem (adb's own messages, any version).
_ADB_FAULTS = re.compile(r"device offline|unauthorized|device '.*' not found|no devices/emulators found|"
                         r"device not found|protocol fault|closed|cannot connect|failed to connect|"
                         r"adb: error: failed to get feature set|connection reset", re.IGNORECASE)
_GETPROP = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]$")
# getprop keys a record keeps, under the names records use.
PROPERTIES = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer",
              "soc": "ro.soc.model", "soc_manufacturer": "ro.soc.manufacturer", "platform": "ro.board.platform",
              "hardware": "ro.hardware", "android_version": "ro.build.version.release",
              "sdk": "ro.build.version.sdk", "abi": "ro.product.cpu.abi", "build": "ro.build.fingerprint",
              "serialno": "ro.serialno"}
HOT_BATTERY_C = 40.0  # LiteRT and MLPerf Mobile both warn of throttling above about this
THERMAL_STATUS = {0: "none", 1: "light", 2: "moderate", 3: "severe", 4: "critical", 5: "emergency", 6: "shutdown"}


def adb_fault(stderr: str) -> str | None:
    """adb's own complaint about the device in ``stderr``, or None where the command itself failed."""
    for line in stderr.splitlines():
        if _ADB_FAULTS.search(line):
            return line.strip().removeprefix("adb: ").removeprefix("error: ")
    return None


class AdbTransport(Transport):
    kind = "adb"

    def __init__(self, agent_tag: str, serial: str = "", adb: str = "", cpu_mask: str = "") -> None:
        super().__init__(agent_tag)
        self.adb = adb or os.environ.get("HWNAS_ADB") or shutil.which("adb") or ""
        if not self.adb:
            raise ValueError("adb is not installed: apt install adb (or the Android SDK platform-tools), or pass "
                             "--adb PATH")
        if cpu_mask and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", cpu_mask):
            raise ValueError(f"--cpu-mask must be a hexadecimal CPU mask such as f0, got {cpu_mask!r}")
        self.serial = serial or self._only_device()
        self._mask = cpu_mask.removeprefix("0x")
        self._props: dict[str, str] | None = None

    def _only_device(self) -> str:
        done = subprocess.run([self.adb, "devices"], capture_output=True, text=True, timeout=30)
        serials = [line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()]
        if len(serials) != 1:
            raise ValueError(f"--via adb needs a serial when adb sees {len(serials)} devices "
                             f"({', '.join(serials) or 'none'}): --via adb:SERIAL")
        return serials[0]

    @property
    def name(self) -> str:
        return f"adb:{self.serial}"

    def _adb(self, *args: str) -> list[str]:
        return [self.adb, "-s", self.serial, *args]

    def _checked(self, done: CommandResult, doing: str) -> CommandResult:
        fault = adb_fault(done.stderr) if done.returncode != 0 else None
        if fault:
            raise TransportError(f"{self.name}: {fault} (while {doing})")
        return done

    def connect(self) -> None:
        done = subprocess.run(self._adb("get-state"), capture_output=True, text=True, timeout=30)
        state = done.stdout.strip()
        if done.returncode != 0 or state != "device":
            cause = adb_fault(done.stderr) or done.stderr.strip() or f"state {state!r}"
            raise TransportError(f"{self.name}: {cause}")

    def properties(self) -> dict[str, str]:
        if self._props is None:
            done = self._checked(self.start("getprop").wait(30), "reading getprop")
            props = {}
            for line in done.stdout.splitlines():
                match = _GETPROP.match(line.strip())
                if match:
                    props[match["key"]] = match["value"]
            self._props = {name: props[key] for name, key in PROPERTIES.items() if props.get(key)}
        return self._props

    def facts(self) -> DeviceFacts:
        props = self.properties()
        meminfo = self.read_text("/proc/meminfo") or ""
        total = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        cores = len(self.core_max_khz())
        soc = props.get("soc") or props.get("platform") or props.get("hardware", "")
        return DeviceFacts(
            hostname=" ".join(v for v in (props.get("manufacturer"), props.get("model")) if v),
            cpu_model=soc, cores_logical=cores, cores_physical=cores,
            memory_total_bytes=int(total.group(1)) * 1024 if total else 0,
            os=f"Android {props.get('android_version', '?')} (SDK {props.get('sdk', '?')})",
            machine=props.get("abi", ""), properties=props)

    def core_max_khz(self) -> dict[int, int]:
        """Each CPU's maximum frequency (kHz) as cpufreq reports it."""
        done = self.run("for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; "
                        "do echo \"$f $(cat $f)\"; done", timeout_s=30)
        found = {}
        for line in done.stdout.splitlines():
            match = re.search(r"/cpu(\d+)/cpufreq/cpuinfo_max_freq (\d+)", line)
            if match:
                found[int(match.group(1))] = int(match.group(2))
        return found

    @property
    def cpu_mask(self) -> str:
        """The taskset mask tools run under: --cpu-mask, else the fastest cores."""
        if not self._mask:
            cores = self.core_max_khz()
            top = max(cores.values(), default=0)
            self._mask = format(sum(1 << c for c, khz in cores.items() if khz == top), "x") if cores else ""
        return self._mask

    def scratch_root(self) -> str:
        return SCRATCH_ROOT

    def push(self, local: Path, remote: str) -> None:
        done = subprocess.run(self._adb("push", str(local), remote), capture_output=True, text=True, timeout=600)
        result = CommandResult(f"adb push {local} {remote}", done.returncode, done.stdout, done.stderr, 0.0)
        self._checked(result, f"pushing the model to {remote}")
        if done.returncode != 0:
            raise TransportError(f"{self.name}: adb push failed: {done.stderr.strip() or done.stdout.strip()}")

    def pull(self, remote: str, local: Path) -> bool:
        done = subprocess.run(self._adb("pull", remote, str(local)), capture_output=True, text=True, timeout=600)
        result = CommandResult(f"adb pull {remote} {local}", done.returncode, done.stdout, done.stderr, 0.0)
        self._checked(result, f"copying {remote} back")
        return done.returncode == 0  # adb: "failed to stat remote object ...: No such file or directory"

    def start(self, command: str) -> ProcessCommand:
        return ProcessCommand(self._adb("shell", command), command)

    def run(self, command: str, timeout_s: float | None = 60.0) -> CommandResult:
        return self._checked(self.start(command).wait(timeout_s), f"running {command.split()[0]}")

    def pinned(self, command: str) -> str:
        """``command`` pinned to the CPU mask (taskset), as LiteRT's guide runs benchmark_model on phones."""
        mask = self.cpu_mask
        return f"taskset {mask} {command}" if mask else command

    def thermal_warnings(self) -> list[str]:
        """The battery's temperature and Android's thermal status, in words, where they mean throttling."""
        warnings = []
        temp = (self.read_text(f"{BATTERY}/temp") or "").strip()
        if temp.lstrip("-").isdigit() and int(temp) / 10 >= HOT_BATTERY_C:
            warnings.append(f"{self.name}: battery at {int(temp) / 10:.1f} °C (>= {HOT_BATTERY_C:g} °C): "
                            "the phone may throttle")
        status = re.search(r"Thermal Status:\s*(\d+)", self.run("dumpsys thermalservice", timeout_s=30).stdout)
        if status and int(status.group(1)) > 0:
            level = int(status.group(1))
            warnings.append(f"{self.name}: Android thermal status {level} ({THERMAL_STATUS.get(level, '?')}): "
                            "the phone is throttling")
        return warnings

    def settings(self) -> dict[str, str]:
        return {**super().settings(), "cpu_mask": self.cpu_mask} if self.cpu_mask else super().settings()

    def power_source(self) -> PowerSource:
        return AndroidBatterySource(self)


class AndroidBatterySource(PowerSource):
    """Power from the battery's fuel gauge: |current_now| x voltage_now, sampled over the tool's run.

    It means the phone's draw only while USB does not power it: with a cable charging the phone the
    battery current is the difference of charge and load. Records say so in the source name.
    """

    name = "android-battery"
    PERIOD_S = 0.25

    def __init__(self, transport: AdbTransport) -> None:
        self.transport = transport

    def probe(self) -> Availability:
        readings = [self.transport.read_text(f"{BATTERY}/{f}") for f in ("current_now", "voltage_now")]
        if any(r is None or not r.strip().lstrip("-").isdigit() for r in readings):
            return Availability(False, f"{self.transport.name}: the kernel exposes no {BATTERY}/current_now and "
                                       "voltage_now")
        return Availability(True, f"{self.transport.name}: {BATTERY} current_now x voltage_now")

    def watts(self) -> float:
        text = self.transport.run(f"cat {BATTERY}/current_now {BATTERY}/voltage_now", timeout_s=10).stdout.split()
        if len(text) != 2:
            raise OSError(f"{BATTERY} gave {text!r}")
        micro_amps, micro_volts = (int(v) for v in text)
        return abs(micro_amps) * micro_volts * 1e-12

    def open(self) -> PowerMeter:
        source = (f"android-battery {self.transport.name}: {BATTERY} |current_now| x voltage_now "
                  "(USB power must be off for this to be the phone's draw)")
        return SampledMeter(self.watts, source, self.PERIOD_S)

