"""Vendor benchmark tools behind a real agent: run here, on a board over real SSH (Debian's sshd on
127.0.0.1), and on a phone through a FAKE adb (tests/device_agent/fake_adb.py; no phone is attached here).
The tools are the real OpenVINO ``benchmark_app`` and LiteRT ``litert-benchmark``; every failure is made
with a real process (sshd killed, a tool that dies by a signal, bytes the tool refuses)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.device_agent.server import AgentConfig, AgentServer

from ..conftest import start_agent
from .lab_devices import BENCHMARK_APP, FAKE_BENCHMARK_MODEL, LITERT_BENCHMARK, FakePhone, SshServer
from .test_bad_input import expect

pytest.importorskip("openvino", reason="the agent-openvino extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the agent-litert extra is not installed")
pytest.importorskip("paramiko", reason="the agent-ssh extra is not installed")
FIXED = {"protocol": "fixed", "protocol_params": {"count": 20}}


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """A ~1 ms CNN as ONNX and as TFLite (the TFLite made by the controller's own export)."""
    pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
    from hwnas.controller.cli.demo import small_cnn
    from hwnas.controller.graph.model_formats import model_format
    from hwnas.controller.graph.onnx_export import to_onnx_bytes

    graph = small_cnn(16, blocks=2)
    return {"onnx": to_onnx_bytes(graph), "tflite": model_format("tflite").export(graph, {})}


def tool_agent(cache: Path, backends: list[str], via: str = "local", tools: dict[str, dict[str, str]] | None = None,
               **transport_options: str) -> AgentServer:
    return start_agent(cache, backends=backends, via=via, backend_options=tools or {},
                       transport_options={k: v for k, v in transport_options.items() if v})


def client_of(server: AgentServer) -> AgentClient:
    client = AgentClient(server.address, timeout_s=120)
    client.wait_ready()
    return client


def local_scratch(server: AgentServer) -> list[str]:
    prefix = server.servicer.transport.scratch_prefix
    return sorted(p.name for p in Path(tempfile.gettempdir()).glob(f"{prefix}*"))


def executable(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_the_agents_tflite_reader_agrees_with_litert_and_hostile_bytes_get_invalid_input(
        models: dict[str, bytes]) -> None:
    """The output check reads a TFLite model's inputs and outputs without LiteRT (tflite_metadata): they are
    the interpreter's. Cut or corrupted files (every 97th prefix, 300 seeded byte flips) are refused with
    InvalidInput or still read; no other exception escapes."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from hwnas.device_agent.errors import InvalidInput
    from hwnas.device_agent.tflite_metadata import model_io

    data = models["tflite"]
    interpreter = Interpreter(model_content=data)
    inputs, outputs = model_io(data)
    for specs, details in ((inputs, interpreter.get_input_details()), (outputs, interpreter.get_output_details())):
        assert [(s.name, s.dims, s.dtype) for s in specs] == [
            (d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]).name) for d in details]
    rng = np.random.default_rng(0)
    damaged = [data[:cut] for cut in range(0, len(data), 97)]
    for _ in range(300):
        flipped = bytearray(data)
        flipped[int(rng.integers(8, min(len(data), 4096)))] ^= int(rng.integers(1, 256))
        damaged.append(bytes(flipped))
    for bad in damaged:
        try:
            model_io(bad)
        except InvalidInput:
            pass


# -- on this host -------------------------------------------------------------------------------------------
def test_benchmark_app_and_litert_benchmark_measure_here_and_the_record_names_tool_version_and_command(
        tmp_path: Path, models: dict[str, bytes]) -> None:
    server = tool_agent(tmp_path / "c", ["benchmark-app", "benchmark-model"],
                        tools={"benchmark-app": {"tool": str(BENCHMARK_APP)},
                               "benchmark-model": {"tool": str(LITERT_BENCHMARK)}})
    try:
        with client_of(server) as client:
            onnx, _ = client.ensure_model(models["onnx"])
            tfl, _ = client.ensure_model(models["tflite"], "tflite")
            ov = client.profile(onnx, backend="benchmark-app", op_profile=True, **FIXED).result
            lt = client.profile(tfl, backend="benchmark-model", threads=1, **FIXED).result
    finally:
        server.stop()
    for result, tool, version in ((ov, "benchmark-app", "2"), (lt, "benchmark-model", "ai-edge-litert ")):
        env = result["environment"]
        assert env["tool"] == tool and env["transport"] == "local" and env["tool_version"].startswith(version)
        assert result["protocol"] == "fixed/tool-mean" and result["stats"]["count"] == 20
        assert result["latency_ms"] > 0 and result["load_ms"] > 0 and result["first_inference_ms"] > 0
    assert ov["environment"]["tool_command"].startswith(f"{BENCHMARK_APP} -m ")
    assert "-niter 20" in ov["environment"]["tool_command"] and "-api sync" in ov["environment"]["tool_command"]
    assert ov["peak_memory_bytes"] > 0 and "benchmark_app" in ov["memory_source"]
    assert ov["op_profile"] and all(op["time_ms"] >= 0 and op["op_type"] for op in ov["op_profile"])
    assert {"--num_runs 20", "--num_threads 1"} <= {f"--{a}" for a in lt["environment"]["tool_command"].split(" --")}
    assert local_scratch(server) == []  # every scratch folder was removed


def test_a_labs_own_tool_file_drives_a_real_tool(tmp_path: Path, models: dict[str, bytes]) -> None:
    """The TOML path end to end: a file describing litert-benchmark by its JSON report, no code."""
    file = tmp_path / "litert.toml"
    file.write_text(f'''name = "my-litert"
format = "tflite"
executable = "{LITERT_BENCHMARK}"
command = """{{executable}} --model {{model}} --num_runs {{runs}} --warmup_runs {{warmup}} \\
  --result_json {{scratch}}/r.json"""
rejects = ["Failed to load model"]
[files]
report = "{{scratch}}/r.json"
[figures]
mean_ms = {{ json = "report", key = "latency.avg_ms" }}
min_ms = {{ json = "report", key = "latency.min_ms" }}
count = {{ json = "report", key = "latency.num_runs" }}
load_ms = {{ json = "report", key = "latency.init_ms" }}
''')
    server = tool_agent(tmp_path / "c", [f"tool:{file}"])
    try:
        with client_of(server) as client:
            assert client.device_info().backends == ["my-litert"]
            sha, _ = client.ensure_model(models["tflite"], "tflite")
            result = client.profile(sha, backend="my-litert", **FIXED).result
            expect(grpc.StatusCode.INVALID_ARGUMENT, f"my-litert ({LITERT_BENCHMARK}) prints no per-op profile",
                   client.profile, sha, backend="my-litert", op_profile=True, **FIXED)  # not a record without one
            bad, _ = client.ensure_model(b"TFL3 not a model" * 64, "tflite")
            expect(grpc.StatusCode.INVALID_ARGUMENT, "my-litert on local refused the model: RuntimeError: Failed to "
                   "load model", client.profile, bad, backend="my-litert", **FIXED)
    finally:
        server.stop()
    assert result["stats"]["count"] == 20 and result["latency_ms"] > 0 and result["load_ms"] > 0
    assert result["environment"]["tool_version"].startswith("sha256:")  # no version command: the binary's hash
    assert local_scratch(server) == []


def test_model_faults_end_in_one_line_and_the_agent_keeps_serving(tmp_path: Path, models: dict[str, bytes]) -> None:
    crash = executable(tmp_path / "crashing_tool", f'exec {sys.executable} -c "import os, signal; '
                                                   'os.kill(os.getpid(), signal.SIGSEGV)"')
    mute = executable(tmp_path / "mute_tool", "echo the tool says nothing useful")
    gone = executable(tmp_path / "vanishing_tool", "exit 0")
    server = tool_agent(tmp_path / "c", ["benchmark-app"], tools={"benchmark-app": {"tool": crash}})
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["onnx"])
            expect(grpc.StatusCode.INTERNAL, "benchmark-app on local was killed by SIGSEGV", client.profile, sha,
                   backend="benchmark-app", **FIXED)
            server.servicer.backends["benchmark-app"].tool.executable_path = mute
            expect(grpc.StatusCode.INTERNAL, "benchmark_app wrote no readable statistics report", client.profile,
                   sha, backend="benchmark-app", **FIXED)
            server.servicer.backends["benchmark-app"].tool.executable_path = gone
            os.unlink(gone)
            expect(grpc.StatusCode.FAILED_PRECONDITION, "the tool is missing", client.profile, sha,
                   backend="benchmark-app", **FIXED)
            server.servicer.backends["benchmark-app"].tool.executable_path = str(BENCHMARK_APP)
            bad, _ = client.ensure_model(b"\x08\x07 not onnx" * 100)
            expect(grpc.StatusCode.INVALID_ARGUMENT, "refused the model: Unable to read the model", client.profile,
                   bad, backend="benchmark-app", **FIXED)
            assert client.profile(sha, backend="benchmark-app", **FIXED).result["latency_ms"] > 0  # still serving
            expect(grpc.StatusCode.INVALID_ARGUMENT, "tool backends take latbench or fixed", client.profile, sha,
                   backend="benchmark-app", protocol="adaptive")
    finally:
        server.stop()
    assert local_scratch(server) == []


def test_a_tool_past_its_deadline_is_killed_with_its_children(tmp_path: Path, models: dict[str, bytes]) -> None:
    slow = executable(tmp_path / "slow_tool", "sleep 987 & wait")  # a tool whose child would outlive it
    server = tool_agent(tmp_path / "c", ["benchmark-app"], tools={"benchmark-app": {"tool": slow}})
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["onnx"])
            expect(grpc.StatusCode.DEADLINE_EXCEEDED, "passed its deadline of 1 s", client.profile, sha,
                   backend="benchmark-app", deadline_seconds=1, **FIXED)
    finally:
        server.stop()
    survivors = [p for p in psutil.process_iter(["cmdline", "status"])
                 if p.info["cmdline"] == ["sleep", "987"] and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert survivors == [] and local_scratch(server) == []


def test_the_agent_refuses_a_tool_it_cannot_find_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="trtexec is not on local: install it there, or name its path"):
        AgentServer(AgentConfig(name="t", cache_dir=tmp_path, backends=["trtexec"]), "127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="--via adb:X reaches another device; onnxruntime run"):
        AgentServer(AgentConfig(name="t", cache_dir=tmp_path, backends=["benchmark-model", "onnxruntime"],
                                via="adb:X"), "127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="benchmark-model has no option"):
        AgentServer(AgentConfig(name="t", cache_dir=tmp_path, backends=["benchmark-model"],
                                backend_options={"benchmark-model": {"tool": str(LITERT_BENCHMARK),
                                                                     "precision": "fp16"}}), "127.0.0.1", 0)


# -- a board over SSH ---------------------------------------------------------------------------------------
@pytest.fixture
def board(tmp_path: Path) -> Iterator[SshServer]:
    server = SshServer(tmp_path / "sshd").start()
    yield server
    server.kill()


def ssh_agent(tmp_path: Path, board: SshServer, tool: Path | str = BENCHMARK_APP,
              litert: Path | str | None = None) -> AgentServer:
    remote = tmp_path / "board-scratch"
    remote.mkdir(exist_ok=True)
    tools = {"benchmark-app": {"tool": str(tool)}}
    if litert:
        tools["benchmark-model"] = {"tool": str(litert)}
    return tool_agent(tmp_path / "c", list(tools), via=board.target, tools=tools, key_file=str(board.client_key),
                      known_hosts=str(board.known_hosts), remote_dir=str(remote))


def test_a_board_over_ssh_measures_through_one_reused_connection(tmp_path: Path, board: SshServer,
                                                                 models: dict[str, bytes]) -> None:
    server = ssh_agent(tmp_path, board, litert=LITERT_BENCHMARK)
    try:
        with client_of(server) as client:
            info = client.device_info()
            sha, _ = client.ensure_model(models["onnx"])
            results = [client.profile(sha, backend="benchmark-app", **FIXED).result for _ in range(2)]
            tfl, _ = client.ensure_model(models["tflite"], "tflite")
            lite = client.profile(tfl, backend="benchmark-model", **FIXED).result
    finally:
        server.stop()
    assert info.transport == board.target and info.device_properties["uname"].startswith("Linux")
    assert info.cpu_cores_logical == os.cpu_count() and info.memory_total_bytes > 0
    assert server.servicer.transport.connections_opened == 1  # start-up, three measurements: one connection
    assert lite["environment"]["tool_version"].startswith("ai-edge-litert ") and lite["stats"]["count"] == 20
    assert lite["environment"]["tool_command"].startswith(f"{LITERT_BENCHMARK} --model {tmp_path / 'board-scratch'}/")
    for result in results:
        env = result["environment"]
        assert env["transport"] == board.target and env["tool"] == "benchmark-app" and result["latency_ms"] > 0
        assert env["tool_command"].startswith(f"{BENCHMARK_APP} -m {tmp_path / 'board-scratch'}/hwnas-")
    assert list((tmp_path / "board-scratch").iterdir()) == []  # nothing left on the board


def test_a_boards_benchmark_model_outputs_come_back_over_sftp_and_pass_the_check(
        tmp_path: Path, board: SshServer, models: dict[str, bytes]) -> None:
    """The output check on a board: the check's input files go up and the outputs file comes back over the
    same SSH connection (SFTP); the board's benchmark_model is the FAKE of the C++ tool (real LiteRT)."""
    from hwnas.controller.fleet.output_check import verdict

    fake = Path(executable(tmp_path / "benchmark_model", f'exec {sys.executable} {FAKE_BENCHMARK_MODEL} "$@"'))
    server = ssh_agent(tmp_path, board, litert=fake)
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["tflite"], "tflite")
            result = client.profile(sha, backend="benchmark-model", output_check=True, **FIXED).result
    finally:
        server.stop()
    shapes = [shape["dims"] for shape in result["input_shapes"]]
    check = verdict(result["outputs"], models["onnx"], shapes, "tflite")
    assert check.status == "ok" and check.max_abs_error < 1e-3, check
    assert server.servicer.transport.connections_opened == 1
    assert list((tmp_path / "board-scratch").iterdir()) == []


def test_ssh_refused_and_a_changed_host_key_give_the_job_back_and_the_agent_keeps_serving(
        tmp_path: Path, board: SshServer, models: dict[str, bytes]) -> None:
    server = ssh_agent(tmp_path, board)
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["onnx"])
            board.kill()  # the board drops off the network
            expect(grpc.StatusCode.UNAVAILABLE, f"{board.target}: connection refused (tried 3 times)",
                   client.profile, sha, backend="benchmark-app", **FIXED)
            board.start()  # back: the next job measures
            assert client.profile(sha, backend="benchmark-app", **FIXED).result["latency_ms"] > 0
            board.kill()
            board.new_host_key()  # reinstalled, or someone in the middle: refused, never accepted
            board.start()
            expect(grpc.StatusCode.UNAVAILABLE, f"{board.target}: host key changed: the board presented "
                   "ssh-ed25519", client.profile, sha, backend="benchmark-app", **FIXED)
    finally:
        server.stop()
    assert list((tmp_path / "board-scratch").iterdir()) == []


# -- a phone over (fake) ADB --------------------------------------------------------------------------------
@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")


def adb_agent(tmp_path: Path, phone: FakePhone, name: str = "phone-agent",
              tool: str = "/data/local/tmp/litert-benchmark") -> AgentServer:
    server = AgentServer(AgentConfig(
        name=name, cache_dir=tmp_path / f"cache-{name}", backends=["benchmark-model"], via=f"adb:{phone.serial}",
        backend_options={"benchmark-model": {"tool": tool}},
        transport_options={"adb": str(phone.adb)}), "127.0.0.1", 0)
    server.start()
    return server


def test_a_phone_over_adb_is_described_by_getprop_pinned_and_metered_by_its_battery(
        tmp_path: Path, phone: FakePhone, models: dict[str, bytes]) -> None:
    phone.battery(current_ua=-500_000, voltage_uv=4_000_000, temp_decic=452)  # 2.0 W, a warm battery
    (phone.device / "thermal_status").write_text("2")
    server = adb_agent(tmp_path, phone)
    try:
        with client_of(server) as client:
            info = client.device_info()
            sha, _ = client.ensure_model(models["tflite"], "tflite")
            result = client.profile(sha, backend="benchmark-model", **FIXED).result
    finally:
        server.stop()
    assert (info.hostname, info.cpu_model, info.os, info.machine) == ("Google Pixel 7", "GS201", "Android 14 (SDK 34)",
                                                                      "arm64-v8a")
    assert info.transport == "adb:FAKE0PHONE" and info.memory_total_bytes == 7812345 * 1024
    assert info.cpu_cores_logical == 2 and info.device_properties["soc"] == "GS201"
    env = result["environment"]
    assert env["transport"] == "adb:FAKE0PHONE" and env["runtime_settings"]["cpu_mask"] == "2"  # the big core
    assert env["cpu_freq_mhz"] == 0 and env["load_avg_1m"] == 0  # the agent host's clock and load are not the phone's
    assert env["tool_command"].startswith("taskset 2 /data/local/tmp/litert-benchmark --model "
                                          "/data/local/tmp/hwnas-")
    power = result["power"]
    assert power["available"] and power["mean_power_w"] == pytest.approx(2.0)
    assert "USB power must be off" in power["source"] and "current_now" in power["source"]
    assert power["energy_per_inference_mj"] == pytest.approx(2.0 * result["stats"]["mean_ms"])
    assert any("battery at 45.2 °C" in w for w in result["warnings"])
    assert any("thermal status 2 (moderate)" in w for w in result["warnings"])
    assert phone.scratch_left() == []


def test_benchmark_model_on_a_phone_checks_its_outputs_and_a_quantised_model_fails_at_fp32_tolerance(
        tmp_path: Path, phone: FakePhone, models: dict[str, bytes]) -> None:
    """#37 on a tool backend: the phone's benchmark_model (a FAKE of the C++ tool running the real LiteRT
    interpreter) is fed the check's seeded input from files and writes its outputs, which come back over
    (fake) adb. The fp32 model agrees with the controller's onnxruntime reference; the int8 one is a real
    wrong answer at fp32 tolerance and right at int8's."""
    from hwnas.controller.cli.demo import small_cnn
    from hwnas.controller.fleet.output_check import verdict
    from hwnas.controller.graph.model_formats import model_format

    int8 = model_format("tflite-int8").export(small_cnn(16, blocks=2), {})
    server = adb_agent(tmp_path, phone, tool=phone.install_benchmark_model())
    try:
        with client_of(server) as client:
            results = {}
            for name, data in (("fp32", models["tflite"]), ("int8", int8)):
                sha, _ = client.ensure_model(data, "tflite")
                results[name] = client.profile(sha, backend="benchmark-model", output_check=True, **FIXED).result
            unchecked = client.profile(sha, backend="benchmark-model", **FIXED).result
    finally:
        server.stop()
    fp32 = results["fp32"]
    assert "--output_filepath=/data/local/tmp/hwnas-" in fp32["environment"]["tool_command"]
    assert "--input_layer_value_files=serving_default_args_0:/data/local/tmp/hwnas-" in \
        fp32["environment"]["tool_command"]
    shapes = [shape["dims"] for shape in fp32["input_shapes"]]
    assert shapes == [[1, 3, 32, 32]] and [o["dims"] for o in fp32["outputs"]] == [[1, 10]]
    check = verdict(fp32["outputs"], models["onnx"], shapes, "tflite")
    assert check.status == "ok" and check.max_abs_error < 1e-3, check
    outputs = results["int8"]["outputs"]
    held_to_fp32 = verdict(outputs, models["onnx"], shapes, "tflite")
    assert held_to_fp32.status == "wrong_answer" and "allowed for tflite" in held_to_fp32.detail
    assert verdict(outputs, models["onnx"], shapes, "tflite-int8").status == "ok"
    assert unchecked["outputs"] == [] and "--output_filepath" not in unchecked["environment"]["tool_command"]
    assert phone.scratch_left() == []


def test_litert_benchmark_on_a_phone_is_checked_by_its_companion(tmp_path: Path, phone: FakePhone,
                                                                 models: dict[str, bytes]) -> None:
    """The wheel's litert-benchmark writes no outputs and prints no memory figure; the companion script, run on
    the phone by the Python of the tool's console script (same ai-edge-litert), computes the check's outputs
    on LiteRT's CPU path and, asked for memory, the model's footprint in its fresh process."""
    from hwnas.controller.fleet.output_check import verdict
    from hwnas.device_agent.tools.check_io import FOOTPRINT_SOURCE

    server = adb_agent(tmp_path, phone)
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["tflite"], "tflite")
            result = client.profile(sha, backend="benchmark-model", output_check=True, memory=True, threads=1,
                                    **FIXED).result
            memory_only = client.profile(sha, backend="benchmark-model", memory=True, **FIXED).result
            plain = client.profile(sha, backend="benchmark-model", **FIXED).result
    finally:
        server.stop()
    shapes = [shape["dims"] for shape in result["input_shapes"]]
    check = verdict(result["outputs"], models["onnx"], shapes, "tflite")
    assert check.status == "ok" and check.max_abs_error < 1e-3, (check, result["warnings"])
    for figures in (result, memory_only):
        assert figures["peak_memory_bytes"] > 0 and figures["memory_source"] == FOOTPRINT_SOURCE, figures
    assert memory_only["outputs"] == [] and plain["peak_memory_bytes"] == 0 and plain["memory_source"] == ""
    assert phone.scratch_left() == []


def test_a_phone_going_offline_mid_run_gives_the_job_back_and_nothing_stays_on_it(
        tmp_path: Path, phone: FakePhone, models: dict[str, bytes]) -> None:
    server = adb_agent(tmp_path, phone)
    try:
        with client_of(server) as client:
            sha, _ = client.ensure_model(models["tflite"], "tflite")
            phone.offline_when("litert-benchmark --model")  # the model is pushed, then the phone drops away
            expect(grpc.StatusCode.UNAVAILABLE, "adb:FAKE0PHONE: device offline", client.profile, sha,
                   backend="benchmark-model", **FIXED)
            assert phone.scratch_left()  # the phone vanished before the folder could go ...
            phone.offline_when(None)
            phone.set_state("unauthorized")
            expect(grpc.StatusCode.UNAVAILABLE, "adb:FAKE0PHONE: device unauthorized", client.profile, sha,
                   backend="benchmark-model", **FIXED)
            phone.set_state("device")
            assert client.profile(sha, backend="benchmark-model", **FIXED).result["latency_ms"] > 0
    finally:
        server.stop()
    assert phone.scratch_left() == []  # ... and goes at the next chance


def test_two_agents_on_one_phone_are_one_host_for_the_gate(tmp_path: Path, phone: FakePhone) -> None:
    other = FakePhone(tmp_path / "other", serial="FAKE1PHONE")
    servers = [adb_agent(tmp_path, phone, "a"), adb_agent(tmp_path, phone, "b"), adb_agent(tmp_path, other, "c")]
    try:
        ids = [s.servicer.device_info().host_id for s in servers]
    finally:
        for s in servers:
            s.stop()
    assert ids[0] == ids[1] != ids[2]


# -- the command lines --------------------------------------------------------------------------------------
def test_agent_info_lists_tool_backends_transports_and_why_any_is_missing(tmp_path: Path, phone: FakePhone) -> None:
    env = {**os.environ, "HWNAS_ADB": str(phone.adb), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "info"], capture_output=True, text=True, env=env,
                          timeout=120)
    report = json.loads(done.stdout)
    tools, transports = report["tool_backends"], report["transports"]
    assert set(tools) == {"benchmark-model", "trtexec", "benchmark-app", "tool:FILE.toml"}
    assert not tools["trtexec"]["available"] and "trtexec is not on this host's PATH" in tools["trtexec"]["detail"]
    assert tools["benchmark-model"]["options"]["benchmark_model"]["delegate"].startswith("one of cpu, xnnpack")
    assert transports["adb"]["available"] and "FAKE0PHONE device" in transports["adb"]["detail"]
    assert transports["ssh"]["available"] and transports["local"]["available"]


def test_serve_flags_name_the_tool_backend_they_configure(tmp_path: Path) -> None:
    from hwnas.device_agent.cli import backend_options, build_parser

    def options(*argv: str) -> dict:
        return backend_options(build_parser().parse_args(["serve", *argv]))

    assert options("--backend", "trtexec", "--tool", "/opt/trtexec", "--tool-option", "precision=fp16") == {
        "trtexec": {"tool": "/opt/trtexec", "precision": "fp16"}}
    assert options("--backend", "trtexec", "--backend", "benchmark-app", "--tool", "trtexec=/opt/t",
                   "--tool-option", "benchmark-app:device=GPU") == {"trtexec": {"tool": "/opt/t"},
                                                                    "benchmark-app": {"device": "GPU"}}
    with pytest.raises(ValueError, match="name the backend"):
        options("--backend", "trtexec", "--backend", "benchmark-app", "--tool", "/opt/t")
    with pytest.raises(ValueError, match="must look like KEY=VALUE"):
        options("--backend", "trtexec", "--tool-option", "fp16")
    code = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--backend", "onnxruntime", "--via",
                           "ftp://x", "--port", "0", "--insecure", "--cache-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert code.returncode == 2 and code.stderr.strip().splitlines()[-1].startswith("hwnas-agent: --via ftp://x")


def test_hwnas_profile_prints_the_tools_figures_and_op_profile(tmp_path: Path, models: dict[str, bytes]) -> None:
    model = tmp_path / "net.onnx"
    model.write_bytes(models["onnx"])
    server = tool_agent(tmp_path / "c", ["benchmark-app"], tools={"benchmark-app": {"tool": str(BENCHMARK_APP)}})
    try:
        done = subprocess.run([sys.executable, "-m", "hwnas.controller.cli.main", "profile", str(model), "--agent",
                               server.address, "--insecure", "--protocol", "fixed", "--param", "count=10",
                               "--op-profile", "--check-output", "--json"], capture_output=True, text=True,
                              timeout=300)
        table = subprocess.run([sys.executable, "-m", "hwnas.controller.cli.main", "profile", str(model), "--agent",
                                server.address, "--insecure", "--protocol", "fixed", "--param", "count=10"],
                               capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["backend"] == "benchmark-app" and result["load_ms"] > 0 and result["first_inference_ms"] > 0
    assert result["op_profile"] and {"name", "op_type", "time_ms"} == set(result["op_profile"][0])
    # benchmark_app feeds random inputs and writes no outputs: its companion, run by the Python of its console
    # script with the same OpenVINO, computes the check's outputs (--check-output crashed the CLI before)
    assert result["output_check"]["status"] == "ok" and result["output_check"]["max_abs_error"] < 1e-3, result
    assert "measured by benchmark-app 2" in table.stdout and "cold start: load" in table.stdout


def test_benchmark_model_falls_back_to_the_wheels_litert_benchmark(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from hwnas.device_agent.tools.registry import BenchmarkModelBackend
    from hwnas.device_agent.transports.local import LocalTransport

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match="benchmark_model is not on local: install it there"):
        BenchmarkModelBackend(transport=LocalTransport("t"))
    (tmp_path / "litert-benchmark").symlink_to(LITERT_BENCHMARK)
    backend = BenchmarkModelBackend(transport=LocalTransport("t"))
    assert type(backend.tool).__name__ == "LiteRtBenchmarkTool"
    assert backend.tool.executable_path == str(tmp_path / "litert-benchmark")
