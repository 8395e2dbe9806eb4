"""The committed generated code must be what protoc makes of the committed .proto files."""

from pathlib import Path

from hwnas.protos.generate import REPO_ROOT, generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "no generated files"
    for path in fresh:
        committed = REPO_ROOT / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `make protos`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `make protos`"


def test_contract_package_is_hwnas_v1() -> None:
    from hwnas.protos.hwnas.v1 import agent_pb2

    assert agent_pb2.DESCRIPTOR.package == "hwnas.v1"
    assert set(agent_pb2.DESCRIPTOR.services_by_name["DeviceAgent"].methods_by_name) == {
        "GetDeviceInfo", "HasModel", "UploadModel", "Profile"
    }
