"""The gRPC face of the agent: upload, cache, FIFO queueing, deadlines, status codes.

Every failure a client can cause becomes a gRPC status with a message that
says what was wrong; the server keeps serving. The standard health service and
server reflection are registered so ``grpc_health_probe`` and ``grpcurl`` work.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hwnas.device_agent import __version__, host, memory_probe
from hwnas.device_agent.backends import TOOL_BACKENDS, Backend, LoadedModel, backend_class
from hwnas.device_agent.cache import ModelCache, check_sha256
from hwnas.device_agent.errors import AgentError, InvalidInput, MeasurementStopped, ModelNotFound
from hwnas.device_agent.fifo import FifoGate
from hwnas.device_agent.measure import SLOW_STEP_S, Measurement, MeasureOptions, StopToken, measure
from hwnas.device_agent.power import PowerSource, idle_power_w, parse_power_source, probe_all
from hwnas.device_agent.protocols import PROTOCOLS
from hwnas.device_agent.transports import DeviceFacts, Transport, TransportError, open_transport
from hwnas.protos.auth import TlsFiles
from hwnas.protos.hwnas.v1 import agent_pb2, agent_pb2_grpc
from hwnas.protos.listen import listen, new_server

log = logging.getLogger("hwnas.agent")

SERVICE_NAME = agent_pb2.DESCRIPTOR.services_by_name["DeviceAgent"].full_name
MAX_CHUNK_BYTES = 1 << 20
LOADED_MODELS_KEPT = 4  # sessions kept warm so a repeated Profile skips model loading
OVERRUN_GRACE_S = 2.0  # a measurement still running this long after its stop makes health NOT_SERVING


@dataclass
class AgentConfig:
    name: str
    cache_dir: Path
    cache_capacity_bytes: int = 2 << 30
    backends: list[str] = field(default_factory=lambda: ["onnxruntime"])
    max_workers: int = 32
    backend_options: dict[str, dict[str, str]] = field(default_factory=dict)  # e.g. replay: table, column
    power_source: str = ""  # NAME[:ARG] of a registered source (device_agent.power); empty: the first available
    idle_baseline_s: float = 0.0  # > 0: measure idle power this long at start and subtract it
    via: str = "local"  # where tool backends run: local, adb[:SERIAL], ssh://USER@HOST[:PORT] (device_agent.transports)
    transport_options: dict[str, str] = field(default_factory=dict)  # adb, cpu_mask, key_file, known_hosts, ...


class AgentServicer(agent_pb2_grpc.DeviceAgentServicer):
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.cache = ModelCache(config.cache_dir, config.cache_capacity_bytes)
        self.transport, self.device_facts = self._open_transport(config)
        self.backends: dict[str, Backend] = {}
        for name in config.backends:
            try:
                cls = backend_class(name)
            except InvalidInput as exc:  # an unknown name: the same "known backends" message, at start
                raise RuntimeError(str(exc)) from None
            availability = cls.probe()
            if not availability.available:
                raise RuntimeError(f"backend {name!r} cannot run on this host: {availability.detail}")
            options: dict = dict(self.config.backend_options.get(name, {}))
            if getattr(cls, "needs_transport", False):  # a vendor tool: it runs where the transport reaches
                options["transport"] = self.transport
                if name.startswith("tool:"):
                    options["file"] = name.removeprefix("tool:")
            try:
                backend = cls(**options)
            except (ValueError, TransportError) as exc:
                raise RuntimeError(f"backend {name!r}: {exc}") from None
            key = backend.name if getattr(cls, "needs_transport", False) else name
            if key in self.backends:
                raise RuntimeError(f"backend {key!r} is enabled twice")
            self.backends[key] = backend
        self.power_probes = probe_all(config.power_source)
        self.power_source, self.power_unavailable_reason = self._pick_power_source(config.power_source)
        self.idle_power_w = 0.0
        if config.idle_baseline_s > 0:
            if self.power_source is None:
                raise RuntimeError(f"--idle-baseline-seconds needs a power source: {self.power_unavailable_reason}")
            self.idle_power_w = idle_power_w(self.power_source, config.idle_baseline_s)
            log.info("idle power %.2f W over %.1f s; records subtract it", self.idle_power_w, config.idle_baseline_s)
        self.gate = FifoGate()
        self._footprints: dict[tuple, int] = {}  # a model's memory footprint, measured once (memory_probe)
        self._loaded: OrderedDict[tuple[str, str, int], LoadedModel] = OrderedDict()
        self._current: StopToken | None = None
        self._current_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._overrun = False
        self.on_health: Callable[[bool], None] = lambda serving: None  # the gRPC server sets its health here

    @staticmethod
    def _open_transport(config: AgentConfig) -> tuple[Transport | None, DeviceFacts | None]:
        """The transport tool backends run through, reached once at start; the device's facts where it is
        not this host. None where the agent has no tool backend."""
        tools = [n for n in config.backends if n.partition(":")[0] in TOOL_BACKENDS]
        if not tools:
            if config.via != "local" or config.transport_options:
                raise RuntimeError(f"--via {config.via} runs vendor tool backends ({', '.join(TOOL_BACKENDS)}); "
                                   "none is enabled")
            return None, None
        if config.via != "local" and len(tools) != len(config.backends):
            others = sorted(set(config.backends) - set(tools))
            raise RuntimeError(f"--via {config.via} reaches another device; {', '.join(others)} run(s) in this "
                               "process on this host: start them in an agent of their own")
        try:
            transport = open_transport(config.via, config.name, config.transport_options)
            transport.connect()
            transport.sweep()  # what an earlier life of this agent left on the device
            facts = transport.facts() if transport.kind != "local" else None
        except (ValueError, TransportError) as exc:
            raise RuntimeError(f"--via {config.via}: {exc}") from None
        log.info("tool backends run through %s%s", transport.name,
                 f" ({facts.hostname}, {facts.os})" if facts else "")
        return transport, facts

    def public(self, message: str) -> str:
        """``message`` as a client may see it: runtimes name the cached file; clients get the model's hash."""
        return message.replace(f"{self.cache.root}{os.sep}", "model ").replace(str(self.cache.root), "the cache")

    def _abort(self, context: grpc.ServicerContext, error: AgentError) -> None:
        context.abort(grpc.StatusCode[error.status_code], self.public(str(error)))

    # -- device info and cache ---------------------------------------------------------------------
    def GetDeviceInfo(self, request, context):  # noqa: N802 - gRPC method name
        return self.device_info()

    def device_info(self) -> agent_pb2.DeviceInfo:
        usage = self.cache.usage()
        facts = self.device_facts  # a device reached over ADB or SSH is described, not the agent's host
        return agent_pb2.DeviceInfo(
            agent_name=self.config.name,
            agent_version=__version__,
            hostname=facts.hostname if facts else host.hostname(),
            host_id=self.transport.host_identity if self.transport else host.host_id(),
            cpu_model=facts.cpu_model if facts else host.cpu_model(),
            cpu_cores_logical=facts.cores_logical if facts else os.cpu_count() or 1,
            cpu_cores_physical=facts.cores_physical if facts else host.physical_cores(),
            memory_total_bytes=facts.memory_total_bytes if facts else host.memory_total_bytes(),
            os=facts.os if facts else platform.platform(),
            machine=facts.machine if facts else platform.machine(),
            python_version=platform.python_version(),
            transport=self.transport.name if self.transport else "",
            device_properties=facts.properties if facts else {},
            runtimes=[
                agent_pb2.RuntimeVersion(name=b.runtime_name, version=b.runtime_version())
                for b in self.backends.values()
            ],
            backends=list(self.backends),
            power_sources=[
                agent_pb2.PowerSourceInfo(name=name, available=avail.available, detail=avail.detail)
                for name, (_, avail) in self.power_probes.items()
            ],
            protocols=sorted(PROTOCOLS),
            cache_capacity_bytes=usage.capacity_bytes,
            cache_used_bytes=usage.used_bytes,
            cache_free_bytes=usage.free_bytes,
            cached_models=usage.models,
        )

    def HasModel(self, request, context):  # noqa: N802
        try:
            check_sha256(request.sha256)
        except AgentError as exc:
            self._abort(context, exc)
        size = self.cache.size_of(request.sha256)
        return agent_pb2.HasModelResponse(present=size is not None, size_bytes=size or 0)

    def UploadModel(self, request_iterator: Iterable[agent_pb2.UploadModelChunk], context):  # noqa: N802
        try:
            return self.store_model(request_iterator)
        except AgentError as exc:
            log.warning("upload refused: %s", exc)
            self._abort(context, exc)

    def store_model(self, chunks: Iterable[agent_pb2.UploadModelChunk]) -> agent_pb2.UploadModelResponse:
        """Cache a model from a header chunk and data chunks (an upload, or a download from the controller)."""
        stream: Iterator[agent_pb2.UploadModelChunk] = iter(chunks)
        first = next(stream, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidInput("the first UploadModelChunk must carry the header (sha256, size_bytes)")
        header = first.header
        check_sha256(header.sha256, "header.sha256")
        if self.cache.size_of(header.sha256) is not None:
            return agent_pb2.UploadModelResponse(
                sha256=header.sha256, size_bytes=header.size_bytes, already_present=True
            )
        with self.cache.receive(header.sha256, header.size_bytes) as sink:
            for chunk in stream:
                if chunk.WhichOneof("part") != "data":
                    raise InvalidInput("only the first UploadModelChunk may carry a header")
                if len(chunk.data) > MAX_CHUNK_BYTES:
                    raise InvalidInput(f"chunk of {len(chunk.data)} bytes exceeds {MAX_CHUNK_BYTES} bytes")
                sink.write(chunk.data)
        log.info("cached model %s (%d bytes)", header.sha256[:12], header.size_bytes)
        return agent_pb2.UploadModelResponse(sha256=header.sha256, size_bytes=header.size_bytes)

    # -- profiling ---------------------------------------------------------------------------------
    def _options(self, request: agent_pb2.ProfileRequest) -> MeasureOptions:
        opts = request.options
        shapes: dict[str, tuple[int, ...]] = {}
        for shape in opts.input_shapes:
            if shape.name in shapes:
                raise InvalidInput(f"input_shapes names {shape.name!r} twice")
            shapes[shape.name] = tuple(int(d) for d in shape.dims)
        options = MeasureOptions(
            protocol=opts.protocol or "latbench",
            protocol_params=dict(opts.protocol_params),
            batch_size=opts.batch_size,
            input_shapes=shapes,
            warmup_runs=opts.warmup_runs if opts.HasField("warmup_runs") else None,
            warmup_seconds=opts.warmup_seconds if opts.HasField("warmup_seconds") else None,
            deadline_seconds=opts.deadline_seconds,
            op_profile=opts.op_profile,
            memory=opts.memory,
            output_check=opts.output_check,
        )
        options.validate()
        return options

    def _pick_power_source(self, wanted: str) -> tuple[PowerSource | None, str]:
        """The configured source (it must be available), else the first available; and why none is."""
        if wanted:
            source, availability = self.power_probes[parse_power_source(wanted)[0]]
            if not availability.available:
                raise RuntimeError(f"power source {wanted!r} is not available: {availability.detail}")
            return source, ""
        source = next((src for src, avail in self.power_probes.values() if avail.available), None)
        return source, "; ".join(f"{name}: {avail.detail}" for name, (_, avail) in self.power_probes.items())

    def _load(self, sha256: str, backend_name: str, path: Path, threads: int) -> LoadedModel:
        key = (sha256, backend_name, threads)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        started = time.monotonic()
        loaded = self.backends[backend_name].load(path, threads)
        took = time.monotonic() - started
        loaded.load_ms = took * 1e3
        if took > SLOW_STEP_S:  # rebuilding a network for PyTorch, compiling for OpenVINO: said, not silent
            log.info("loading %s for %s took %.1f s", sha256[:12], backend_name, took)
        self._loaded[key] = loaded
        while len(self._loaded) > LOADED_MODELS_KEPT:
            self._loaded.popitem(last=False)
        return loaded

    def _with_footprint(self, result: Measurement, request: agent_pb2.ProfileRequest, backend_name: str,
                        path: Path) -> Measurement:
        """``result`` with the model's own footprint (``memory_probe``), once per model, backend, threads and
        shapes; a runtime that runs nothing here (replay, simulator) has none, and says nothing."""
        backend = self.backends[backend_name]
        if not backend.runtime_modules:
            return result
        key = (request.model_sha256, backend_name, request.options.threads, tuple(sorted(result.input_shapes.items())))
        if key not in self._footprints:
            started = time.monotonic()
            try:
                self._footprints[key] = memory_probe.footprint(  # the request's deadline bounds the probe too
                    backend_name, self.config.backend_options.get(backend_name, {}), path,
                    request.options.threads, result.input_shapes,
                    request.options.deadline_seconds or memory_probe.TIMEOUT_S)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                log.warning("memory footprint of %s on %s: %s", request.model_sha256[:12], backend_name, exc)
                return result
            log.info("memory footprint of %s on %s: %.1f MiB (%.1f s)", request.model_sha256[:12], backend_name,
                     self._footprints[key] / 2**20, time.monotonic() - started)
        return replace(result, peak_memory_bytes=self._footprints[key],
                                   memory_source=memory_probe.SOURCE)

    def check(self, request: agent_pb2.ProfileRequest) -> tuple[str, MeasureOptions]:
        """The backend name and options of a request this agent can run now; an AgentError saying why not."""
        check_sha256(request.model_sha256, "model_sha256")
        backend_name = request.backend or "onnxruntime"
        if backend_name not in self.backends:
            backend_class(backend_name)  # an unregistered name gets the "known backends" message
            raise InvalidInput(
                f"backend {backend_name!r} is not enabled on this agent; enabled: {sorted(self.backends)}"
            )
        cores = (self.device_facts.cores_logical if self.device_facts else 0) or os.cpu_count() or 1
        if not 0 <= request.options.threads <= cores:  # thousands of threads crash or wedge the runtime
            raise InvalidInput(f"threads must be 0 (the runtime's default) to {cores} (this host's logical cores), "
                               f"got {request.options.threads}")
        options = self._options(request)
        if self.cache.size_of(request.model_sha256) is None:
            raise ModelNotFound(
                f"model {request.model_sha256} is not in this agent's cache; upload it first (HasModel/UploadModel)"
            )
        return backend_name, options

    def Profile(self, request: agent_pb2.ProfileRequest, context):  # noqa: N802
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        token = StopToken()
        context.add_callback(lambda: token.stop("the client cancelled or its deadline passed", "CANCELLED"))
        try:
            return self.execute(request, token, deadline, lambda: not context.is_active())
        except AgentError as exc:
            self._abort(context, exc)
        except Exception as exc:  # a runtime failing mid-measurement: say what it said, keep serving
            log.exception("profile of %s failed", request.model_sha256[:12])
            context.abort(grpc.StatusCode.INTERNAL,
                          self.public(f"measurement failed in {request.backend or 'onnxruntime'}: {exc}"))

    def execute(self, request: agent_pb2.ProfileRequest, token: StopToken, deadline: float | None,
                cancelled: Callable[[], bool]) -> agent_pb2.ProfileResult:
        """Wait for the agent's turn, measure, and build the result; AgentError for anything the caller caused.

        Shared by the DeviceAgent service and the dial-out link, so both measure exactly alike.
        """
        backend_name, options = self.check(request)
        log.debug("profile of %s arrives; %d call(s) hold or wait for the gate", request.model_sha256[:12],
                  self.gate.depth)
        try:
            with self.gate.turn(deadline, cancelled) as waited_s, self._running(token):
                log.debug("measuring %s on %s", request.model_sha256[:12], backend_name)
                token.arm_deadline(options.deadline_seconds)  # covers loading and binding, not just timing
                with self.cache.pinned(request.model_sha256) as path:
                    loaded = self._load(request.model_sha256, backend_name, path, request.options.threads)
                    result = measure(loaded, options, self.power_source, self.power_unavailable_reason,
                                     token, idle_power_w=self.idle_power_w)
                    if options.memory and not result.peak_memory_bytes:
                        result = self._with_footprint(result, request, backend_name, path)
        except MeasurementStopped as exc:
            log.warning("profile of %s stopped: %s", request.model_sha256[:12], exc)
            raise
        log.info(
            "profiled %s on %s: %.4f ms (%s), waited %.1f ms",
            request.model_sha256[:12], backend_name, result.latency_ms, result.protocol, waited_s * 1e3,
        )
        return self._result(request, backend_name, result, waited_s)

    def _result(self, request, backend_name: str, m: Measurement, waited_s: float) -> agent_pb2.ProfileResult:
        backend = self.backends[backend_name]
        return agent_pb2.ProfileResult(
            model_sha256=request.model_sha256,
            backend=backend_name,
            protocol=m.protocol,
            protocol_params=m.protocol_params,
            protocol_details=m.protocol_details,
            latency_ms=m.latency_ms,
            stats=agent_pb2.LatencyStats(**vars(m.stats)),
            samples_ms=[s / 1e6 for s in m.samples_ns] if request.options.return_samples else [],
            power=agent_pb2.PowerReport(**vars(m.power)),
            environment=agent_pb2.EnvironmentSnapshot(
                threads=m.threads,
                runtime=backend.runtime_name,
                runtime_version=m.tool.version if m.tool else backend.runtime_version(),
                runtime_settings=m.runtime_settings,
                tool=m.tool.name if m.tool else "",
                tool_version=m.tool.version if m.tool else "",
                tool_command=m.tool.command if m.tool else "",
                transport=m.tool.transport if m.tool else "",
                **vars(m.host),
            ),
            load_ms=m.load_ms,
            first_inference_ms=m.first_inference_ms,
            peak_memory_bytes=m.peak_memory_bytes,
            memory_source=m.memory_source,
            op_profile=[agent_pb2.OpTime(name=n, op_type=t, time_ms=ms) for n, t, ms in m.op_profile],
            model_bytes=self.cache.size_of(request.model_sha256) or 0,
            outputs=[agent_pb2.OutputValues(name=n, dims=d, values=v) for n, d, v in m.outputs],
            queue_wait_ms=waited_s * 1e3,
            measurement_wall_ms=m.wall_ms,
            warmup_runs_done=m.warmup_runs_done,
            batch_size=m.batch_size,
            input_shapes=[agent_pb2.TensorShape(name=k, dims=list(v)) for k, v in m.input_shapes.items()],
            agent_name=self.config.name,
            agent_version=__version__,
            started_unix_ns=m.started_unix_ns,
            finished_unix_ns=m.finished_unix_ns,
            warnings=m.warnings,
        )

    @contextmanager
    def _running(self, token: StopToken) -> Iterator[None]:
        """Mark ``token``'s measurement as the one running; while it overruns a stop, health says NOT_SERVING."""
        overrun = threading.Timer(OVERRUN_GRACE_S, self._set_overrun, args=(token,))
        overrun.daemon = True
        with self._current_lock:
            self._current = token
            self._idle.clear()
        token.on_stop(overrun.start)
        try:
            yield
        finally:
            token.close()
            overrun.cancel()
            with self._current_lock:
                self._current = None
                self._idle.set()
                was_overrun, self._overrun = self._overrun, False
            if was_overrun and not self.gate.closed:
                log.warning("the overrunning measurement ended; serving again")
                self.on_health(True)

    def _set_overrun(self, token: StopToken) -> None:
        with self._current_lock:
            if self._current is not token:
                return
            self._overrun = True
        log.error("a measurement told to stop (%s) is still running after %.0f s; health is NOT_SERVING until it "
                  "ends", token.reason, OVERRUN_GRACE_S)
        self.on_health(False)

    @property
    def busy(self) -> bool:
        """A measurement is running (possibly one the runtime cannot interrupt)."""
        return not self._idle.is_set()

    # -- shutdown ----------------------------------------------------------------------------------
    def shut_down(self, drain_seconds: float) -> str:
        """Refuse queued calls, let the running measurement finish for ``drain_seconds``, then abort it; the
        transport's connection (SSH) is released."""
        outcome = self._drain(drain_seconds)
        if self.transport is not None:
            self.transport.close()
        return outcome

    def _drain(self, drain_seconds: float) -> str:
        self.gate.close("the agent is shutting down")
        if self._idle.wait(drain_seconds):
            return "no measurement was running" if drain_seconds == 0 else "the current measurement finished"
        with self._current_lock:
            token = self._current
        if token is not None:
            token.stop("the agent is shutting down: measurement aborted", "UNAVAILABLE")
        if self._idle.wait(10):
            return "the current measurement was aborted"
        return "the current measurement could not be interrupted by its runtime; it is abandoned"


class AgentServer:
    """A running agent: the gRPC server with the agent, health and reflection services.

    ``tls`` serves over TLS (mutual when it names a client CA); without it the server listens in
    plaintext, which the CLI allows only on loopback with --insecure. ``token`` requires a bearer token.
    """

    def __init__(self, config: AgentConfig, host_addr: str = "127.0.0.1", port: int = 0,
                 tls: TlsFiles | None = None, token: str | None = None) -> None:
        self.servicer = AgentServicer(config)
        self.server = new_server(config.max_workers, "hwnas-agent", token, maximum_concurrent_rpcs=config.max_workers,
                                 client_role="controller" if tls and tls.client_ca else None)
        agent_pb2_grpc.add_DeviceAgentServicer_to_server(self.servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.servicer.on_health = self._set_health
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        target = f"{host_addr}:{port}"
        self.tls = tls
        self.port = listen(self.server, target, tls)
        self.address = f"{host_addr}:{self.port}"

    def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)

    def start(self) -> None:
        self.server.start()
        self._set_health(True)

    def stop(self, drain_seconds: float = 0.0) -> str:
        self._set_health(False)
        outcome = self.servicer.shut_down(drain_seconds)
        self.server.stop(grace=2).wait()
        return outcome

    def wait(self) -> None:
        self.server.wait_for_termination()
