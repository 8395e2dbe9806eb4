"""A STAND-IN for Google's ``adb`` client (no phone is attached to this machine): a FAKE, named as such.

It keeps a local folder as the device's filesystem and runs ``adb shell`` commands locally with the
device's paths (/data/local/tmp, /sys/..., /proc/meminfo) mapped into that folder, so the tools it runs are
real processes (LiteRT's litert-benchmark stands in for benchmark_model). It answers the subcommands the
ADB transport uses (devices, get-state, push, shell) with adb's own messages and exit codes, including its
complaints when the device is offline or unauthorised (the folder's ``state`` file says which). A file
``offline_when`` holding a substring takes the device offline when a shell command containing it starts.

Layout under $FAKE_ADB_ROOT: serial, state, offline_when (optional), device/ (the phone's filesystem,
with device/system/bin holding getprop and dumpsys scripts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ["FAKE_ADB_ROOT"])
DEVICE = ROOT / "device"
MAPPED = ("/data/local/tmp", "/sys/class/power_supply", "/sys/devices/system/cpu", "/proc/meminfo")
MESSAGES = {"offline": "adb: device offline", "unauthorized": "adb: device unauthorized.\nThis adb server's "
            "$ADB_VENDOR_KEYS is not set\nTry 'adb kill-server' if that seems wrong."}


def to_device(text: str) -> str:
    for prefix in MAPPED:
        text = text.replace(prefix, f"{DEVICE}{prefix}")
    return text


def from_device(text: str) -> str:
    return text.replace(str(DEVICE), "")


def main(argv: list[str]) -> int:
    serial = (ROOT / "serial").read_text().strip()
    state = (ROOT / "state").read_text().strip()
    if argv[:1] == ["-s"]:
        if argv[1] != serial:
            print(f"adb: device '{argv[1]}' not found", file=sys.stderr)
            return 1
        argv = argv[2:]
    if argv == ["devices"]:
        print(f"List of devices attached\n{serial}\t{state}\n")
        return 0
    if state != "device":
        print(MESSAGES[state], file=sys.stderr)
        return 1
    if argv == ["get-state"]:
        print("device")
        return 0
    if argv[:1] == ["push"]:
        shutil.copyfile(argv[1], to_device(argv[2]))
        print(f"{argv[1]}: 1 file pushed, 0 skipped.")
        return 0
    if argv[:1] == ["pull"]:
        source = Path(to_device(argv[1]))
        if not source.is_file():
            print(f"adb: error: failed to stat remote object '{argv[1]}': No such file or directory", file=sys.stderr)
            return 1
        shutil.copyfile(source, argv[2])
        print(f"{argv[1]}: 1 file pulled, 0 skipped.")
        return 0
    if argv[:1] == ["shell"]:
        command = " ".join(argv[1:])
        trigger = ROOT / "offline_when"
        if trigger.exists() and trigger.read_text().strip() in command:
            (ROOT / "state").write_text("offline")
            print("adb: device offline", file=sys.stderr)
            return 1
        env = {**os.environ, "PATH": f"{DEVICE}/system/bin:{os.environ['PATH']}"}
        done = subprocess.run(["sh", "-c", to_device(command)], capture_output=True, text=True, env=env)
        sys.stdout.write(from_device(done.stdout))
        sys.stderr.write(from_device(done.stderr))
        return done.returncode
    print(f"adb: unknown command {argv}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
