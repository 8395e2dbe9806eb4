from hwnas.protos.hwnas.v1 import agent_pb2 as _agent_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRequest(_message.Message):
    __slots__ = ("agent_id", "device_key", "device_info")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KEY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_INFO_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    device_key: str
    device_info: _agent_pb2.DeviceInfo
    def __init__(self, agent_id: _Optional[str] = ..., device_key: _Optional[str] = ..., device_info: _Optional[_Union[_agent_pb2.DeviceInfo, _Mapping]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("heartbeat_interval_s", "lease_s")
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_s: float
    lease_s: float
    def __init__(self, heartbeat_interval_s: _Optional[float] = ..., lease_s: _Optional[float] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("agent_id", "job_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: int
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class LeaseJobRequest(_message.Message):
    __slots__ = ("agent_id", "wait_seconds")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    wait_seconds: float
    def __init__(self, agent_id: _Optional[str] = ..., wait_seconds: _Optional[float] = ...) -> None: ...

class LeaseJobResponse(_message.Message):
    __slots__ = ("job_id", "request", "model_size_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    request: _agent_pb2.ProfileRequest
    model_size_bytes: int
    def __init__(self, job_id: _Optional[int] = ..., request: _Optional[_Union[_agent_pb2.ProfileRequest, _Mapping]] = ..., model_size_bytes: _Optional[int] = ...) -> None: ...

class FetchModelRequest(_message.Message):
    __slots__ = ("agent_id", "sha256")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    sha256: str
    def __init__(self, agent_id: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class JobFailure(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ReportJobRequest(_message.Message):
    __slots__ = ("agent_id", "job_id", "result", "failure")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    job_id: int
    result: _agent_pb2.ProfileResult
    failure: JobFailure
    def __init__(self, agent_id: _Optional[str] = ..., job_id: _Optional[int] = ..., result: _Optional[_Union[_agent_pb2.ProfileResult, _Mapping]] = ..., failure: _Optional[_Union[JobFailure, _Mapping]] = ...) -> None: ...

class ReportJobResponse(_message.Message):
    __slots__ = ("recorded", "job_state")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    job_state: str
    def __init__(self, recorded: _Optional[bool] = ..., job_state: _Optional[str] = ...) -> None: ...
