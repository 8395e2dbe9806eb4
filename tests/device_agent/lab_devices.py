"""Devices for the tool-backend tests: a real OpenSSH server on 127.0.0.1 with keys made here, and the
stand-in (fake) adb of ``fake_adb.py`` with a folder as the phone."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SSHD = "/usr/sbin/sshd"
VENV_BIN = Path(sys.executable).parent
LITERT_BENCHMARK = VENV_BIN / "litert-benchmark"
BENCHMARK_APP = VENV_BIN / "benchmark_app"
FAKE_BENCHMARK_MODEL = Path(__file__).parent / "fake_benchmark_model.py"  # the C++ tool's FAKE (no build here)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


class SshServer:
    """Debian's sshd on 127.0.0.1: key authentication only, a host key of its own, our user only."""

    def __init__(self, folder: Path) -> None:
        if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
            pytest.skip("openssh-server is not installed (apt install openssh-server; .ci/run installs it)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.client_key = folder / "client_key"
        keygen(self.client_key)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        self.known_hosts = folder / "known_hosts"
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        self.process: subprocess.Popen | None = None
        self.new_host_key()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {self.host_public_key()}\n")

    @property
    def target(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def new_host_key(self) -> None:
        for suffix in ("", ".pub"):
            (self.folder / f"host_key{suffix}").unlink(missing_ok=True)
        keygen(self.folder / "host_key")

    def host_public_key(self) -> str:
        return " ".join((self.folder / "host_key.pub").read_text().split()[:2])

    def start(self) -> SshServer:
        config = self.folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.folder / 'host_key'}",
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
            f"PidFile {self.folder / 'sshd.pid'}", f"AllowUsers {self.user}", "Subsystem sftp internal-sftp",
            "LogLevel ERROR", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # readiness: the port accepts a connection
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.process.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def kill(self) -> None:
        """SIGKILL to sshd and every session it serves: the board drops off the network."""
        if self.process is not None and self.process.poll() is None:
            sessions = psutil.Process(self.process.pid).children(recursive=True)
            self.process.kill()
            for session in sessions:
                try:
                    session.kill()
                except psutil.NoSuchProcess:
                    pass
            self.process.wait()

    def agent_args(self) -> list[str]:
        return ["--via", self.target, "--ssh-key", str(self.client_key), "--ssh-known-hosts", str(self.known_hosts)]


class FakePhone:
    """The folder a FAKE adb (fake_adb.py) treats as an Android phone; its tool is the real litert-benchmark."""

    def __init__(self, root: Path, serial: str = "FAKE0PHONE") -> None:
        self.root, self.serial = root, serial
        self.device = root / "device"
        for folder in ("data/local/tmp", "system/bin", "sys/class/power_supply/battery", "proc"):
            (self.device / folder).mkdir(parents=True, exist_ok=True)
        for cpu, khz in ((0, 1_800_000), (1, 2_400_000)):  # a little and a big core
            freq = self.device / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
            freq.mkdir(parents=True, exist_ok=True)
            (freq / "cpuinfo_max_freq").write_text(f"{khz}\n")
        (root / "serial").write_text(serial)
        self.set_state("device")
        self.battery(current_ua=-500_000, voltage_uv=4_000_000, temp_decic=310)
        (self.device / "proc/meminfo").write_text("MemTotal:        7812345 kB\nMemFree:  100 kB\n")
        self.script("getprop", "\n".join(f"echo '[{k}]: [{v}]'" for k, v in {
            "ro.product.model": "Pixel 7", "ro.product.manufacturer": "Google", "ro.soc.model": "GS201",
            "ro.build.version.release": "14", "ro.build.version.sdk": "34", "ro.product.cpu.abi": "arm64-v8a",
            "ro.serialno": serial}.items()))
        (self.device / "thermal_status").write_text("0")
        self.script("dumpsys", f'echo "Thermal Status: $(cat {self.device}/thermal_status)"')
        (self.device / "data/local/tmp/litert-benchmark").symlink_to(LITERT_BENCHMARK)
        self.adb = root / "adb"
        self.adb.write_text(f"#!/bin/sh\nFAKE_ADB_ROOT={root} exec {sys.executable} "
                            f"{Path(__file__).parent / 'fake_adb.py'} \"$@\"\n")
        self.adb.chmod(self.adb.stat().st_mode | stat.S_IXUSR)

    def install_benchmark_model(self) -> str:
        """Put the FAKE C++ ``benchmark_model`` (fake_benchmark_model.py) on the phone; its path there."""
        tool = self.device / "data/local/tmp/benchmark_model"
        tool.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_BENCHMARK_MODEL} \"$@\"\n")
        tool.chmod(0o755)
        return "/data/local/tmp/benchmark_model"

    def script(self, name: str, body: str) -> None:
        path = self.device / "system/bin" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def set_state(self, state: str) -> None:
        (self.root / "state").write_text(state)

    def offline_when(self, text: str | None) -> None:
        trigger = self.root / "offline_when"
        if text is None:
            trigger.unlink(missing_ok=True)
        else:
            trigger.write_text(text)

    def battery(self, current_ua: int, voltage_uv: int, temp_decic: int) -> None:
        battery = self.device / "sys/class/power_supply/battery"
        (battery / "current_now").write_text(f"{current_ua}\n")
        (battery / "voltage_now").write_text(f"{voltage_uv}\n")
        (battery / "temp").write_text(f"{temp_decic}\n")

    def scratch_left(self) -> list[str]:
        return sorted(p.name for p in (self.device / "data/local/tmp").glob("hwnas-*"))

    def agent_args(self) -> list[str]:
        return ["--via", f"adb:{self.serial}", "--adb", str(self.adb), "--tool",
                "/data/local/tmp/litert-benchmark"]
