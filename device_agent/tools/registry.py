"""The tool backends the agent registers: one class per vendor tool, and one for a lab's own TOML file."""

from __future__ import annotations

from collections.abc import Mapping

from hwnas.device_agent.tools.backend import ToolBackend
from hwnas.device_agent.tools.benchmark_app import BenchmarkAppTool
from hwnas.device_agent.tools.benchmark_model import benchmark_model_tool
from hwnas.device_agent.tools.custom import CustomTool
from hwnas.device_agent.tools.trtexec import TrtExecTool
from hwnas.device_agent.transports import Transport


class BenchmarkModelBackend(ToolBackend):
    name = runtime_name = "benchmark-model"
    make_tool = staticmethod(benchmark_model_tool)
    fallbacks = ("litert-benchmark",)  # the ai-edge-litert wheel's tool, where a board has Python


class TrtExecBackend(ToolBackend):
    name = runtime_name = "trtexec"
    make_tool = staticmethod(TrtExecTool)


class BenchmarkAppBackend(ToolBackend):
    name = runtime_name = "benchmark-app"
    make_tool = staticmethod(BenchmarkAppTool)


class CustomToolBackend(ToolBackend):
    """``--backend tool:FILE.toml``: registered under the name the file gives."""

    name = runtime_name = "tool"

    def __init__(self, transport: Transport, file: str, tool: str = "", **options: str) -> None:
        def make(executable: str, options: Mapping[str, str]) -> CustomTool:
            return CustomTool(file, executable, options)

        self.make_tool = make  # type: ignore[assignment] - this backend's tool comes from its file
        super().__init__(transport, tool, **options)
