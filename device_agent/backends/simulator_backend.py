"""``simulator``: an accelerator simulator host. ZigZag (``zigzag-dse``) estimates cycles and energy.

The agent receives the same ONNX bytes as any other, infers its tensor shapes (ZigZag needs them) and
asks ZigZag for the best temporal and spatial mapping of every layer on a configured accelerator. Latency
is cycles at ``--sim-clock-mhz``; energy is ZigZag's estimate. Nothing runs, so records say so: the
protocol is ``simulator:zigzag@VERSION``, the runtime names the accelerator and the sha256 of its
description, and the details carry the cycle count, clock and energy. ZigZag takes seconds per network,
so answers are cached per model (content hash) for the agent's lifetime.

Accelerators: a ZigZag hardware YAML, or the name of one ZigZag ships (``tpu_like``, ``edge_tpu_like``,
``eyeriss_like``, ``ascend_like``, ``tesla_npu_like``, ``meta_prototype``, ...). The mapping defaults to the
shipped mapping of the same name, else ZigZag's ``default.yaml``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from hwnas.device_agent.backends.base import Answer, AnsweredModel, Backend
from hwnas.device_agent.backends.common import first_line, installed_version, missing_modules
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.power.base import Availability

DISTRIBUTION = "zigzag-dse"


def _zigzag_inputs() -> Path:
    import zigzag

    return Path(zigzag.__file__).parent / "inputs"


class SimulatorBackend(Backend):
    name = "simulator"
    runtime_name = "simulator:zigzag"

    def __init__(self, accelerator: str = "tpu_like", mapping: str = "", clock_mhz: str = "1000",
                 effort: str = "6") -> None:
        self.accelerator = self._hardware_file(accelerator, "hardware", "--sim-accelerator")
        self.mapping = self._hardware_file(mapping or (accelerator if not accelerator.endswith(".yaml") else ""),
                                           "mapping", "--sim-mapping", fallback="default")
        try:
            self.clock_mhz, self.effort = float(clock_mhz), int(effort)
        except ValueError:
            raise ValueError(f"--sim-clock-mhz and --sim-effort must be numbers, got {clock_mhz!r}, "
                             f"{effort!r}") from None
        if self.clock_mhz <= 0 or self.effort < 1:
            raise ValueError("--sim-clock-mhz must be > 0 and --sim-effort >= 1")
        self.digest = hashlib.sha256(self.accelerator.read_bytes() + self.mapping.read_bytes()).hexdigest()
        self._answers: dict[str, Answer] = {}  # model sha256 -> answer
        self._layers: dict[str, tuple[float, float]] = {}  # layer signature -> (energy pJ, cycles)
        self._lock = threading.Lock()

    @staticmethod
    def _hardware_file(value: str, kind: str, flag: str, fallback: str = "") -> Path:
        """A YAML path as given, or the file of that name ZigZag ships under inputs/KIND."""
        if value.endswith((".yaml", ".yml")):
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"{flag} {value}: no such file")
            return path
        shipped = _zigzag_inputs() / kind
        for name in (value, fallback):
            if name and (shipped / f"{name}.yaml").is_file():
                return shipped / f"{name}.yaml"
        names = sorted(p.stem for p in shipped.glob("*.yaml"))
        raise ValueError(f"{flag} {value!r} is neither a YAML file nor one ZigZag ships: {', '.join(names)}")

    @classmethod
    def probe(cls) -> Availability:
        return missing_modules(("zigzag", "onnx"), "agent-sim") or Availability(
            True, f"ZigZag {installed_version(DISTRIBUTION)}: cycles and energy of a simulated accelerator")

    def runtime_version(self) -> str:  # type: ignore[override] - an instance knows its accelerator
        if not hasattr(self, "accelerator"):
            return installed_version(DISTRIBUTION)
        return (f"zigzag {installed_version(DISTRIBUTION)} {self.accelerator.stem}+{self.mapping.stem}"
                f"@sha256:{self.digest[:16]} {self.clock_mhz:g} MHz")

    def load(self, model_path: Path, threads: int) -> AnsweredModel:
        with self._lock:  # one simulation at a time; a cached model answers at once
            answer = self._answers.get(model_path.name) or self._simulate(model_path.read_bytes())
            self._answers[model_path.name] = answer
        return AnsweredModel(answer, f"simulated on {self.accelerator.stem} by ZigZag: not measured on hardware")

    def _simulate(self, data: bytes) -> Answer:
        """The network's cycles and energy: the sum over its layers, each simulated once per distinct shape.

        ZigZag costs Conv, Gemm and MatMul layers one after another (other ops cost nothing) and sums
        them, so simulating each distinct layer alone and summing gives the network's figure; networks of
        one space share most layer shapes, so a campaign simulates each shape once.
        """
        import onnx

        try:
            model = onnx.shape_inference.infer_shapes(onnx.load_from_string(data), strict_mode=True)
        except Exception as exc:
            raise InvalidInput(f"the simulator needs an ONNX model whose shapes infer: {first_line(exc)}") from exc
        cycles = energy = 0.0
        layers = 0
        for signature, layer in _costed_layers(model):
            if signature not in self._layers:
                self._layers[signature] = self._zigzag(layer)
            layer_energy, layer_cycles = self._layers[signature]
            energy, cycles, layers = energy + layer_energy, cycles + layer_cycles, layers + 1
        latency_ms = cycles / (self.clock_mhz * 1e3)
        return Answer(latency_ms=latency_ms, protocol=f"simulator:zigzag@{installed_version(DISTRIBUTION)}",
                      details={"cycles": cycles, "clock_mhz": self.clock_mhz, "energy_pj": energy,
                               "layers": float(layers), "effort": float(self.effort)},
                      energy_mj=energy * 1e-9, energy_source=f"simulator:zigzag {self.accelerator.stem}")

    def _zigzag(self, layer) -> tuple[float, float]:
        """(energy pJ, cycles) of one layer at its latency-optimal mapping.

        The pipeline of ``zigzag.api.get_hardware_performance_zigzag`` without its result-saving stages: they
        write JSON and pickles nobody reads here, and its mapping printer fails on layers that fit the array
        with no temporal loop.
        """
        from zigzag.mapping.temporal_mapping import TemporalMappingType
        from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
        from zigzag.stages.main import MainStage
        from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
        from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
        from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
        from zigzag.stages.parser.onnx_model_parser import ONNXModelParserStage
        from zigzag.stages.results.reduce_stages import MinimalLatencyStage, SumStage
        from zigzag.stages.workload_iterator import WorkloadStage

        zigzag_log = logging.getLogger("zigzag")
        level = zigzag_log.level
        zigzag_log.setLevel(logging.ERROR)  # ZigZag logs every layer's mapping search at INFO and WARNING
        stages = [ONNXModelParserStage, AcceleratorParserStage, SumStage, WorkloadStage, MinimalLatencyStage,
                  SpatialMappingGeneratorStage, MinimalLatencyStage, TemporalMappingGeneratorStage, CostModelStage]
        try:
            cmes = MainStage(stages, accelerator=str(self.accelerator), workload=layer, mapping=str(self.mapping),
                             loma_lpf_limit=self.effort, loma_show_progress_bar=False,
                             nb_mappings_generated=min(3, self.effort), enable_mix_spatial_mapping_generation=False,
                             access_same_data_considered_as_no_access=True,
                             temporal_mapping_type=TemporalMappingType("uneven")).run()
        except Exception as exc:  # ZigZag's own errors say what it could not map
            raise InvalidInput(f"ZigZag could not simulate a {layer.graph.node[0].op_type} layer on "
                               f"{self.accelerator.stem}: {first_line(exc)}") from exc
        finally:
            zigzag_log.setLevel(level)
        return float(cmes[0][0].energy_total), float(cmes[0][0].latency_total2)


COSTED_OPS = ("Conv", "Gemm", "MatMul")  # the ops ZigZag's ONNX parser costs; it treats others as free


def _costed_layers(model):
    """(signature, one-layer ONNX model) for each layer ZigZag costs, in graph order."""
    from onnx import helper

    graph = model.graph
    types = {v.name: v for v in (*graph.input, *graph.value_info, *graph.output)}
    weights = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type not in COSTED_OPS:
            continue
        data_in = [name for name in node.input if name and name not in weights]
        if any(name not in types for name in (*data_in, node.output[0])):
            raise InvalidInput(f"shape inference left {node.op_type} {node.name!r} without tensor shapes")
        layer = helper.make_model(
            helper.make_graph([node], node.name or node.op_type, [types[n] for n in data_in], [types[node.output[0]]],
                              initializer=[weights[n] for n in node.input if n in weights]),
            opset_imports=list(model.opset_import))
        signature = hashlib.sha256(b"|".join([
            node.op_type.encode(), *(a.SerializeToString() for a in node.attribute),
            *(types[n].type.SerializeToString() for n in (*data_in, node.output[0])),
            str([list(weights[n].dims) for n in node.input if n in weights]).encode()])).hexdigest()
        yield signature, layer
