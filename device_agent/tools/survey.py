"""What ``hwnas-agent info`` says of the tool backends and transports on this host, and why any is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from typing import Any

from hwnas.device_agent.tools.benchmark_app import BenchmarkAppTool
from hwnas.device_agent.tools.benchmark_model import BenchmarkModelTool, LiteRtBenchmarkTool
from hwnas.device_agent.tools.custom import FIGURES, PLACEHOLDERS
from hwnas.device_agent.tools.trtexec import TrtExecTool

INSTALL = {
    "benchmark_model": "LiteRT's prebuilt binary for the device (Android, aarch64 Linux) from the LiteRT releases",
    "litert-benchmark": "pip install 'hwnas[agent-litert]' (the ai-edge-litert wheel)",
    "trtexec": "TensorRT (JetPack puts it in /usr/src/tensorrt/bin)",
    "benchmark_app": "pip install 'hwnas[agent-openvino]' (the openvino wheel)",
}


def _found(executable: str) -> dict[str, Any]:
    path = shutil.which(executable)
    if path:
        return {"available": True, "detail": f"{executable} at {path}"}
    return {"available": False, "detail": f"{executable} is not on this host's PATH ({INSTALL[executable]}); it may "
                                          "be on a device reached with --via, or pass --tool PATH"}


def survey_tools() -> dict[str, Any]:
    """Each tool backend: what it sends the tool, its --tool-option settings and whether this host has it."""
    report: dict[str, Any] = {}
    for backend, tools in (("benchmark-model", (BenchmarkModelTool, LiteRtBenchmarkTool)),
                           ("trtexec", (TrtExecTool,)), ("benchmark-app", (BenchmarkAppTool,))):
        found = [_found(tool.executable) for tool in tools]
        report[backend] = {
            "available": any(f["available"] for f in found), "detail": "; ".join(f["detail"] for f in found),
            "model_format": tools[0].model_format,
            "options": {tool.executable: dict(tool.OPTIONS) for tool in tools},
        }
    report["tool:FILE.toml"] = {
        "available": True, "detail": f"a lab's own tool described by a TOML file (placeholders "
                                     f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}; figures {', '.join(FIGURES)})",
        "model_format": "as the file says", "options": {}}
    return report


def survey_transports() -> dict[str, Any]:
    """local, adb (the client and the devices it sees) and ssh (its client library)."""
    report: dict[str, Any] = {"local": {"available": True, "detail": "this host"}}
    adb = os.environ.get("HWNAS_ADB") or shutil.which("adb")
    if adb is None:
        report["adb"] = {"available": False, "detail": "adb is not installed (apt install adb, or the Android SDK "
                                                       "platform-tools; or set HWNAS_ADB)"}
    else:
        try:
            done = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=15)
            devices = [" ".join(line.split()) for line in done.stdout.splitlines()[1:] if line.strip()]
            detail = f"{adb}; devices: {', '.join(devices) or 'none attached'}"
        except (OSError, subprocess.SubprocessError) as exc:
            detail = f"{adb} does not answer: {exc}"
        report["adb"] = {"available": True, "detail": detail}
    if importlib.util.find_spec("paramiko") is None:
        report["ssh"] = {"available": False, "detail": "not installed: paramiko (pip install 'hwnas[agent-ssh]')"}
    else:
        report["ssh"] = {"available": True, "detail": "paramiko: key authentication, host keys from known_hosts"}
    return report
