from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDeviceInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RuntimeVersion(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class PowerSourceInfo(_message.Message):
    __slots__ = ("name", "available", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    available: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., available: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class DeviceInfo(_message.Message):
    __slots__ = ("agent_name", "agent_version", "hostname", "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "memory_total_bytes", "os", "machine", "python_version", "runtimes", "backends", "power_sources", "protocols", "cache_capacity_bytes", "cache_used_bytes", "cache_free_bytes", "cached_models", "host_id", "transport", "device_properties")
    class DevicePropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_LOGICAL_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_PHYSICAL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    POWER_SOURCES_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHED_MODELS_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    agent_name: str
    agent_version: str
    hostname: str
    cpu_model: str
    cpu_cores_logical: int
    cpu_cores_physical: int
    memory_total_bytes: int
    os: str
    machine: str
    python_version: str
    runtimes: _containers.RepeatedCompositeFieldContainer[RuntimeVersion]
    backends: _containers.RepeatedScalarFieldContainer[str]
    power_sources: _containers.RepeatedCompositeFieldContainer[PowerSourceInfo]
    protocols: _containers.RepeatedScalarFieldContainer[str]
    cache_capacity_bytes: int
    cache_used_bytes: int
    cache_free_bytes: int
    cached_models: int
    host_id: str
    transport: str
    device_properties: _containers.ScalarMap[str, str]
    def __init__(self, agent_name: _Optional[str] = ..., agent_version: _Optional[str] = ..., hostname: _Optional[str] = ..., cpu_model: _Optional[str] = ..., cpu_cores_logical: _Optional[int] = ..., cpu_cores_physical: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., os: _Optional[str] = ..., machine: _Optional[str] = ..., python_version: _Optional[str] = ..., runtimes: _Optional[_Iterable[_Union[RuntimeVersion, _Mapping]]] = ..., backends: _Optional[_Iterable[str]] = ..., power_sources: _Optional[_Iterable[_Union[PowerSourceInfo, _Mapping]]] = ..., protocols: _Optional[_Iterable[str]] = ..., cache_capacity_bytes: _Optional[int] = ..., cache_used_bytes: _Optional[int] = ..., cache_free_bytes: _Optional[int] = ..., cached_models: _Optional[int] = ..., host_id: _Optional[str] = ..., transport: _Optional[str] = ..., device_properties: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HasModelRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class HasModelResponse(_message.Message):
    __slots__ = ("present", "size_bytes")
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    present: bool
    size_bytes: int
    def __init__(self, present: _Optional[bool] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("sha256", "size_bytes", "format")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    format: str
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class UploadModelChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadModelResponse(_message.Message):
    __slots__ = ("sha256", "size_bytes", "already_present")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    already_present: bool
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., already_present: _Optional[bool] = ...) -> None: ...

class TensorShape(_message.Message):
    __slots__ = ("name", "dims")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dims: _Optional[_Iterable[int]] = ...) -> None: ...

class ProfileOptions(_message.Message):
    __slots__ = ("batch_size", "input_shapes", "threads", "warmup_runs", "warmup_seconds", "protocol", "protocol_params", "return_samples", "deadline_seconds", "op_profile", "memory", "output_check")
    class ProtocolParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RUNS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    RETURN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CHECK_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    input_shapes: _containers.RepeatedCompositeFieldContainer[TensorShape]
    threads: int
    warmup_runs: int
    warmup_seconds: float
    protocol: str
    protocol_params: _containers.ScalarMap[str, float]
    return_samples: bool
    deadline_seconds: float
    op_profile: bool
    memory: bool
    output_check: bool
    def __init__(self, batch_size: _Optional[int] = ..., input_shapes: _Optional[_Iterable[_Union[TensorShape, _Mapping]]] = ..., threads: _Optional[int] = ..., warmup_runs: _Optional[int] = ..., warmup_seconds: _Optional[float] = ..., protocol: _Optional[str] = ..., protocol_params: _Optional[_Mapping[str, float]] = ..., return_samples: _Optional[bool] = ..., deadline_seconds: _Optional[float] = ..., op_profile: _Optional[bool] = ..., memory: _Optional[bool] = ..., output_check: _Optional[bool] = ...) -> None: ...

class ProfileRequest(_message.Message):
    __slots__ = ("model_sha256", "backend", "options")
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    backend: str
    options: ProfileOptions
    def __init__(self, model_sha256: _Optional[str] = ..., backend: _Optional[str] = ..., options: _Optional[_Union[ProfileOptions, _Mapping]] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("count", "min_ms", "mean_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "std_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    P90_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    STD_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    def __init__(self, count: _Optional[int] = ..., min_ms: _Optional[float] = ..., mean_ms: _Optional[float] = ..., median_ms: _Optional[float] = ..., p90_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., max_ms: _Optional[float] = ..., std_ms: _Optional[float] = ...) -> None: ...

class PowerReport(_message.Message):
    __slots__ = ("available", "source", "unavailable_reason", "window_s", "energy_j", "mean_power_w", "energy_per_inference_mj", "sampling_period_s", "idle_power_w")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    MEAN_POWER_W_FIELD_NUMBER: _ClassVar[int]
    ENERGY_PER_INFERENCE_MJ_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    available: bool
    source: str
    unavailable_reason: str
    window_s: float
    energy_j: float
    mean_power_w: float
    energy_per_inference_mj: float
    sampling_period_s: float
    idle_power_w: float
    def __init__(self, available: _Optional[bool] = ..., source: _Optional[str] = ..., unavailable_reason: _Optional[str] = ..., window_s: _Optional[float] = ..., energy_j: _Optional[float] = ..., mean_power_w: _Optional[float] = ..., energy_per_inference_mj: _Optional[float] = ..., sampling_period_s: _Optional[float] = ..., idle_power_w: _Optional[float] = ...) -> None: ...

class EnvironmentSnapshot(_message.Message):
    __slots__ = ("threads", "cpu_governor", "cpu_freq_mhz", "load_avg_1m", "load_avg_5m", "load_avg_15m", "runtime", "runtime_version", "gpu_name", "gpu_sm_clock_mhz", "gpu_temperature_c", "runtime_settings", "tool", "tool_version", "tool_command", "transport")
    class RuntimeSettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    THREADS_FIELD_NUMBER: _ClassVar[int]
    CPU_GOVERNOR_FIELD_NUMBER: _ClassVar[int]
    CPU_FREQ_MHZ_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_1M_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_5M_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_15M_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    GPU_NAME_FIELD_NUMBER: _ClassVar[int]
    GPU_SM_CLOCK_MHZ_FIELD_NUMBER: _ClassVar[int]
    GPU_TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    TOOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOOL_COMMAND_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    threads: int
    cpu_governor: str
    cpu_freq_mhz: float
    load_avg_1m: float
    load_avg_5m: float
    load_avg_15m: float
    runtime: str
    runtime_version: str
    gpu_name: str
    gpu_sm_clock_mhz: float
    gpu_temperature_c: float
    runtime_settings: _containers.ScalarMap[str, str]
    tool: str
    tool_version: str
    tool_command: str
    transport: str
    def __init__(self, threads: _Optional[int] = ..., cpu_governor: _Optional[str] = ..., cpu_freq_mhz: _Optional[float] = ..., load_avg_1m: _Optional[float] = ..., load_avg_5m: _Optional[float] = ..., load_avg_15m: _Optional[float] = ..., runtime: _Optional[str] = ..., runtime_version: _Optional[str] = ..., gpu_name: _Optional[str] = ..., gpu_sm_clock_mhz: _Optional[float] = ..., gpu_temperature_c: _Optional[float] = ..., runtime_settings: _Optional[_Mapping[str, str]] = ..., tool: _Optional[str] = ..., tool_version: _Optional[str] = ..., tool_command: _Optional[str] = ..., transport: _Optional[str] = ...) -> None: ...

class ProfileResult(_message.Message):
    __slots__ = ("model_sha256", "backend", "protocol", "protocol_params", "latency_ms", "stats", "samples_ms", "power", "environment", "queue_wait_ms", "measurement_wall_ms", "warmup_runs_done", "batch_size", "input_shapes", "agent_name", "agent_version", "started_unix_ns", "finished_unix_ns", "warnings", "protocol_details", "load_ms", "first_inference_ms", "peak_memory_bytes", "memory_source", "op_profile", "model_bytes", "outputs")
    class ProtocolParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ProtocolDetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_MS_FIELD_NUMBER: _ClassVar[int]
    POWER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_WALL_MS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RUNS_DONE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_DETAILS_FIELD_NUMBER: _ClassVar[int]
    LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    OP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    backend: str
    protocol: str
    protocol_params: _containers.ScalarMap[str, float]
    latency_ms: float
    stats: LatencyStats
    samples_ms: _containers.RepeatedScalarFieldContainer[float]
    power: PowerReport
    environment: EnvironmentSnapshot
    queue_wait_ms: float
    measurement_wall_ms: float
    warmup_runs_done: int
    batch_size: int
    input_shapes: _containers.RepeatedCompositeFieldContainer[TensorShape]
    agent_name: str
    agent_version: str
    started_unix_ns: int
    finished_unix_ns: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    protocol_details: _containers.ScalarMap[str, float]
    load_ms: float
    first_inference_ms: float
    peak_memory_bytes: int
    memory_source: str
    op_profile: _containers.RepeatedCompositeFieldContainer[OpTime]
    model_bytes: int
    outputs: _containers.RepeatedCompositeFieldContainer[OutputValues]
    def __init__(self, model_sha256: _Optional[str] = ..., backend: _Optional[str] = ..., protocol: _Optional[str] = ..., protocol_params: _Optional[_Mapping[str, float]] = ..., latency_ms: _Optional[float] = ..., stats: _Optional[_Union[LatencyStats, _Mapping]] = ..., samples_ms: _Optional[_Iterable[float]] = ..., power: _Optional[_Union[PowerReport, _Mapping]] = ..., environment: _Optional[_Union[EnvironmentSnapshot, _Mapping]] = ..., queue_wait_ms: _Optional[float] = ..., measurement_wall_ms: _Optional[float] = ..., warmup_runs_done: _Optional[int] = ..., batch_size: _Optional[int] = ..., input_shapes: _Optional[_Iterable[_Union[TensorShape, _Mapping]]] = ..., agent_name: _Optional[str] = ..., agent_version: _Optional[str] = ..., started_unix_ns: _Optional[int] = ..., finished_unix_ns: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., protocol_details: _Optional[_Mapping[str, float]] = ..., load_ms: _Optional[float] = ..., first_inference_ms: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., memory_source: _Optional[str] = ..., op_profile: _Optional[_Iterable[_Union[OpTime, _Mapping]]] = ..., model_bytes: _Optional[int] = ..., outputs: _Optional[_Iterable[_Union[OutputValues, _Mapping]]] = ...) -> None: ...

class OutputValues(_message.Message):
    __slots__ = ("name", "dims", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    dims: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., dims: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class OpTime(_message.Message):
    __slots__ = ("name", "op_type", "time_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    op_type: str
    time_ms: float
    def __init__(self, name: _Optional[str] = ..., op_type: _Optional[str] = ..., time_ms: _Optional[float] = ...) -> None: ...
