"""LiteRT's own per-op profiler, reached through the C API of the ``libLiteRt`` the ai-edge-litert wheel ships.

The Python ``Interpreter`` keeps no profile. LiteRT's ``CompiledModel`` does: compiled with the runtime option
``enable_profiling``, its profiler records every operator invocation (XNNPACK's own operators where the
delegate runs them, the interpreter's kernels elsewhere), which is what ``benchmark_model
--enable_op_profiling`` summarises. The Python ``CompiledModel`` offers no way to set that option, so the
profile comes from a second, profiling compiled model built here with ``ctypes``, at the shapes and thread
count of the measurement, after its timed window.

Only the C functions and structs of LiteRT's public headers (``litert/c``) are used. ``ProfiledEventData``'s
layout is checked on every read (event types and sources must be ones the header defines), so a wheel whose
layout moved fails with a clear error instead of returning nonsense.
"""

from __future__ import annotations

import ctypes as C
import importlib.util
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hwnas.device_agent.backends.common import random_input
from hwnas.device_agent.errors import InvalidInput

_LIBRARY_NAME = "libLiteRt.so"
_NEEDED = ("LiteRtCreateEnvironment", "LiteRtCreateModelFromFile", "LiteRtCreateOptions",
           "LiteRtCreateOpaqueOptions", "LiteRtAddOpaqueOptions", "LiteRtCreateCompiledModel",
           "LiteRtCompiledModelGetProfiler", "LiteRtGetProfilerEvents",
           "LiteRtCompiledModelResizeInputTensorNonStrict", "LiteRtGetCompiledModelOutputTensorLayouts")
_CPU = 1  # kLiteRtHwAcceleratorCpu
_LOCK_WRITE = 1  # kLiteRtTensorBufferLockModeWrite
# LiteRtProfilerEventType: the operator invocations benchmark_model's "Run Order" table lists. Delegate-internal
# events (1 << 2) are nested inside an interpreter node's time and would count it twice.
_OPERATOR, _DELEGATE_OPERATOR = 1 << 1, 1 << 3
_EVENT_TYPES = {1 << k for k in range(9)}
_SOURCES = {0, 1, 2}  # LITERT, TFLITE_INTERPRETER, TFLITE_DELEGATE
_MAX_RANK = 8

_Handle = C.c_void_p


class _Layout(C.Structure):
    """LiteRtLayout: rank:7 and has_strides:1 share one unsigned, then dimensions and strides."""

    _fields_ = [("rank", C.c_uint, 7), ("has_strides", C.c_uint, 1), ("dimensions", C.c_int32 * _MAX_RANK),
                ("strides", C.c_uint32 * _MAX_RANK)]


class _TensorType(C.Structure):
    """LiteRtRankedTensorType."""

    _fields_ = [("element_type", C.c_int), ("layout", _Layout)]


class _Memory(C.Structure):
    _fields_ = [("total_allocated_bytes", C.c_size_t), ("in_use_allocated_bytes", C.c_size_t),
                ("private_footprint_bytes", C.c_size_t)]


class _Event(C.Structure):
    """ProfiledEventData (litert/c/litert_profiler_event.h)."""

    _fields_ = [("tag", C.c_char_p), ("event_type", C.c_int), ("start_timestamp_us", C.c_uint64),
                ("elapsed_time_us", C.c_uint64), ("begin_mem_usage", _Memory), ("end_mem_usage", _Memory),
                ("event_metadata1", C.c_uint64), ("event_metadata2", C.c_uint64), ("event_source", C.c_int)]


_DESTRUCTOR = C.CFUNCTYPE(None, C.c_void_p)
_KEEP_PAYLOAD = _DESTRUCTOR(lambda payload: None)  # the payloads are Python buffers, freed by Python
_state: dict[str, object] = {}
_state_lock = threading.Lock()


def _library_path() -> Path | None:
    spec = importlib.util.find_spec("ai_edge_litert")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / _LIBRARY_NAME).is_file():
            return Path(folder) / _LIBRARY_NAME
    return None


def unavailable_reason() -> str:
    """Empty where this host's LiteRT can profile ops, else why not (checked before a measurement's timed
    window, so a refusal costs nothing)."""
    path = _library_path()
    if path is None:
        return (f"LiteRT op profiles need the ai-edge-litert wheel's {_LIBRARY_NAME} (tflite-runtime has none): "
                "pip install ai-edge-litert")
    try:
        library = C.CDLL(str(path))
    except OSError as exc:
        return f"{path} did not load: {exc}"
    missing = [name for name in _NEEDED if not hasattr(library, name)]
    return f"{path} lacks {', '.join(missing)}: this ai-edge-litert has no profiler API" if missing else ""


def _api() -> tuple[C.CDLL, _Handle]:
    """The library and one environment for this process (creating one loads and logs the accelerators)."""
    with _state_lock:
        if "library" not in _state:
            reason = unavailable_reason()
            if reason:
                raise InvalidInput(reason)
            library = C.CDLL(str(_library_path()))
            environment = _Handle()
            _check(library.LiteRtCreateEnvironment(0, None, C.byref(environment)), "creating an environment")
            _state.update(library=library, environment=environment)
        return _state["library"], _state["environment"]  # type: ignore[return-value]


def _check(status: int, what: str) -> None:
    if status != 0:
        raise InvalidInput(f"LiteRT's profiler failed {what} (LiteRtStatus {status})")


def _options(library: C.CDLL, stack: ExitStack, threads: int) -> _Handle:
    """Compilation options: the CPU (XNNPACK) at ``threads``, with profiling on, both as the TOML payloads
    LiteRT's option parsers read."""
    options = _Handle()
    _check(library.LiteRtCreateOptions(C.byref(options)), "creating options")
    stack.callback(library.LiteRtDestroyOptions, options)
    _check(library.LiteRtSetOptionsHardwareAccelerators(options, _CPU), "choosing the CPU")
    payloads = [("runtime_options_string", b"enable_profiling = true")]
    if threads > 0:
        payloads.append(("xnnpack", f"num_threads = {threads}".encode()))
    for identifier, text in payloads:
        payload = C.create_string_buffer(text)
        stack.callback(lambda kept=payload: kept)  # lives as long as the options that point at it
        opaque = _Handle()
        _check(library.LiteRtCreateOpaqueOptions(identifier.encode(), C.cast(payload, C.c_void_p), _KEEP_PAYLOAD,
                                                 C.byref(opaque)), f"setting {identifier}")
        _check(library.LiteRtAddOpaqueOptions(options, opaque), f"adding {identifier}")
    return options


def _buffers(library: C.CDLL, environment: _Handle, stack: ExitStack, compiled: _Handle, signature: _Handle,
             kind: str, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[str]) -> C.Array:
    """One managed buffer per input or output (``kind``) at ``shapes``; inputs get seeded values."""
    buffers = (_Handle * len(shapes))()
    rng = np.random.default_rng(0)
    for index, shape in enumerate(shapes):
        tensor, tensor_type, requirements = _Handle(), _TensorType(), _Handle()
        _check(getattr(library, f"LiteRtGetSignature{kind}TensorByIndex")(signature, C.c_size_t(index),
                                                                          C.byref(tensor)), f"finding {kind} {index}")
        _check(library.LiteRtGetRankedTensorType(tensor, C.byref(tensor_type)), f"reading {kind} {index}'s type")
        tensor_type.layout.rank = len(shape)
        for axis, size in enumerate(shape):
            tensor_type.layout.dimensions[axis] = size
        _check(getattr(library, f"LiteRtGetCompiledModel{kind}BufferRequirements")(
            compiled, C.c_size_t(0), C.c_size_t(index), C.byref(requirements)), f"sizing {kind} {index}")
        slot = C.cast(C.addressof(buffers) + index * C.sizeof(_Handle), C.POINTER(_Handle))
        _check(library.LiteRtCreateManagedTensorBufferFromRequirements(environment, C.byref(tensor_type),
                                                                       requirements, slot), f"allocating {kind}")
        buffer = _Handle(buffers[index])
        stack.callback(library.LiteRtDestroyTensorBuffer, buffer)
        if kind == "Input":
            _fill(library, buffer, shape, dtypes[index], rng)
    return buffers


def _fill(library: C.CDLL, buffer: _Handle, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> None:
    values = random_input(shape, dtype, rng)
    size, address = C.c_size_t(), C.c_void_p()
    _check(library.LiteRtGetTensorBufferSize(buffer, C.byref(size)), "sizing an input buffer")
    if size.value < values.nbytes:
        raise InvalidInput(f"LiteRT allocated {size.value} bytes for an input of shape {shape} ({values.nbytes})")
    _check(library.LiteRtLockTensorBuffer(buffer, C.byref(address), _LOCK_WRITE), "locking an input")
    try:
        C.memmove(address, values.tobytes(), values.nbytes)
    finally:
        library.LiteRtUnlockTensorBuffer(buffer)


def op_times(model_path: Path, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[str], threads: int,
             runs: int) -> list[tuple[str, str, float]]:
    """(op name, op type, ms per inference) of every operator LiteRT ran, in execution order, averaged over
    ``runs`` profiled inferences after one unprofiled one. ``shapes`` and ``dtypes`` are the inputs', in
    the model's signature order. Delegated operators are named as benchmark_model names them,
    ``[Delegate]:N`` (XNNPACK's N-th operator); the interpreter's own by ``[node]:N``."""
    library, environment = _api()
    with ExitStack() as stack:
        model, compiled, signature, profiler = _Handle(), _Handle(), _Handle(), _Handle()
        _check(library.LiteRtCreateModelFromFile(environment, str(model_path).encode(), C.byref(model)),
               f"loading {model_path.name}")
        stack.callback(library.LiteRtDestroyModel, model)
        options = _options(library, stack, threads)
        _check(library.LiteRtCreateCompiledModel(environment, model, options, C.byref(compiled)), "compiling")
        stack.callback(library.LiteRtDestroyCompiledModel, compiled)
        _check(library.LiteRtGetModelSignature(model, C.c_size_t(0), C.byref(signature)), "reading the signature")
        inputs, outputs = C.c_size_t(), C.c_size_t()
        _check(library.LiteRtGetNumSignatureInputs(signature, C.byref(inputs)), "counting inputs")
        _check(library.LiteRtGetNumSignatureOutputs(signature, C.byref(outputs)), "counting outputs")
        if inputs.value != len(shapes):
            raise InvalidInput(f"LiteRT's signature has {inputs.value} inputs, the request {len(shapes)}")
        for index, shape in enumerate(shapes):
            dims = (C.c_int * len(shape))(*shape)
            _check(library.LiteRtCompiledModelResizeInputTensorNonStrict(
                compiled, C.c_size_t(0), C.c_size_t(index), dims, C.c_size_t(len(shape))), f"resizing input {index}")
        layouts = (_Layout * outputs.value)()  # the outputs' shapes at these inputs (allocated for them)
        _check(library.LiteRtGetCompiledModelOutputTensorLayouts(compiled, C.c_size_t(0), outputs, layouts,
                                                                 C.c_bool(True)), "shaping the outputs")
        feeds = _buffers(library, environment, stack, compiled, signature, "Input", list(shapes), dtypes)
        results = _buffers(library, environment, stack, compiled, signature, "Output",
                           [tuple(layout.dimensions[:layout.rank]) for layout in layouts], [])

        def run() -> None:
            _check(library.LiteRtRunCompiledModel(compiled, C.c_size_t(0), C.c_size_t(len(feeds)), feeds,
                                                  C.c_size_t(len(results)), results), "running the model")

        run()  # the first inference allocates; it is not an operator's steady time
        _check(library.LiteRtCompiledModelGetProfiler(compiled, C.byref(profiler)), "finding the profiler")
        _check(library.LiteRtResetProfiler(profiler), "resetting the profiler")
        _check(library.LiteRtStartProfiler(profiler), "starting the profiler")
        for _ in range(runs):
            run()
        _check(library.LiteRtStopProfiler(profiler), "stopping the profiler")
        return _per_op(_events(library, profiler), runs)


def _events(library: C.CDLL, profiler: _Handle) -> list[_Event]:
    count = C.c_int()
    _check(library.LiteRtGetNumProfilerEvents(profiler, C.byref(count)), "counting events")
    events = (_Event * count.value)()
    _check(library.LiteRtGetProfilerEvents(profiler, count, events), "reading events")
    for event in events:
        if event.event_type not in _EVENT_TYPES or event.event_source not in _SOURCES or event.tag is None:
            raise InvalidInput("LiteRT's profiler events do not have the layout of litert/c/litert_profiler_event.h "
                               "that hwnas reads (a newer ai-edge-litert?): no op profile")
    return list(events)


def _per_op(events: Sequence[_Event], runs: int) -> list[tuple[str, str, float]]:
    """Each operator's mean time per inference, in the order it first ran."""
    totals: dict[tuple[int, int], list] = {}
    for event in events:
        if event.event_type not in (_OPERATOR, _DELEGATE_OPERATOR):
            continue
        name = f"[Delegate]:{event.event_metadata1}" if event.event_type == _DELEGATE_OPERATOR else \
            f"[node]:{event.event_metadata1}"
        entry = totals.setdefault((event.event_type, event.event_metadata1), [name, event.tag.decode(), 0])
        entry[2] += event.elapsed_time_us
    return [(name, op_type, total_us / 1e3 / runs) for name, op_type, total_us in totals.values()]
