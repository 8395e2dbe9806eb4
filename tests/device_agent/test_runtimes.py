"""The LiteRT, Edge TPU and PyTorch backends behind a real agent, and the ONNX -> PyTorch rebuild."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space
from hwnas.device_agent.backends import probe_backend
from hwnas.device_agent.backends.litert_backend import edgetpu_library
from hwnas.device_agent.backends.onnx_torch import load_onnx_module
from hwnas.device_agent.errors import InvalidInput

from ..conftest import start_agent
from ..controller.test_graph_ir import every_op_graph, small_graph
from .test_bad_input import expect


def ort_outputs(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})


def test_the_torch_rebuild_of_every_op_computes_what_onnxruntime_computes() -> None:
    graph = every_op_graph()
    data = to_onnx_bytes(graph)
    x = np.random.default_rng(0).standard_normal(graph.input_shape).astype(np.float32)
    with torch.inference_mode():
        outs = load_onnx_module(data)(torch.from_numpy(x))
    for got, expected in zip(outs, ort_outputs(data, x), strict=True):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("space", ["nb201", "ofa-mbv3", "ofa-resnet50"])
def test_the_torch_rebuild_of_sampled_networks_matches_onnxruntime(space: str) -> None:
    s = get_space(space)
    graph = s.to_graph(s.sample(np.random.default_rng(7)))
    data = to_onnx_bytes(graph)
    x = np.random.default_rng(1).standard_normal(graph.input_shape).astype(np.float32)
    with torch.inference_mode():
        got = load_onnx_module(data)(torch.from_numpy(x)).numpy()
    expected = ort_outputs(data, x)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_the_torch_rebuild_refuses_an_op_it_does_not_know_by_name() -> None:
    node = helper.make_node("Softplus", ["input"], ["output"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString()
    with pytest.raises(InvalidInput, match=r"cannot run ONNX op\(s\) \['Softplus'\]"):
        load_onnx_module(data)
    with pytest.raises(InvalidInput, match="not an ONNX model"):
        load_onnx_module(b"TFL3 certainly not onnx")


@pytest.fixture
def runtimes_client(tmp_path: Path) -> Iterator[AgentClient]:
    server = start_agent(tmp_path / "cache", backends=["onnxruntime", "litert", "torch"],
                         backend_options={"torch": {"device": "cpu", "compile": "false"}})
    with AgentClient(server.address, timeout_s=120) as client:
        client.wait_ready()
        yield client
    server.stop()


@pytest.fixture(scope="module")
def tflite_model() -> bytes:
    pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
    from hwnas.controller.graph.model_formats import model_format

    return model_format("tflite").export(small_graph(), {})  # NB-201 networks run in LiteRT in the campaign tests


def test_one_agent_times_onnx_in_pytorch_and_tflite_in_litert(runtimes_client: AgentClient,
                                                             tflite_model: bytes) -> None:
    info = runtimes_client.device_info()
    assert info.backends == ["onnxruntime", "litert", "torch"]
    runtimes = {r.name: r.version for r in info.runtimes}
    assert torch.__version__.startswith(runtimes["pytorch"]) and runtimes["litert"].startswith("ai-edge-litert")
    onnx = to_onnx_bytes(small_graph())
    onnx_sha, _ = runtimes_client.ensure_model(onnx)
    tfl_sha, _ = runtimes_client.ensure_model(tflite_model, "tflite")
    for sha, size, backend, runtime in ((onnx_sha, len(onnx), "torch", "pytorch"),
                                        (tfl_sha, len(tflite_model), "litert", "litert"),
                                        (onnx_sha, len(onnx), "onnxruntime", "onnxruntime")):
        result = runtimes_client.profile(sha, backend=backend, protocol="fixed",
                                         protocol_params={"count": 20}).result
        assert result["backend"] == backend and result["environment"]["runtime"] == runtime
        assert result["stats"]["count"] == 20 and result["latency_ms"] > 0
        assert result["input_shapes"][0]["dims"] == [1, 3, 16, 16]
        # cold start apart from the timed statistics, and the model's size, on every in-process runtime
        assert result["load_ms"] > 0 and result["first_inference_ms"] > 0 and result["model_bytes"] == size, result


def test_each_runtime_refuses_the_others_bytes_and_the_agent_keeps_serving(runtimes_client: AgentClient,
                                                                          tflite_model: bytes) -> None:
    onnx_sha, _ = runtimes_client.ensure_model(to_onnx_bytes(small_graph()))
    tfl_sha, _ = runtimes_client.ensure_model(tflite_model, "tflite")
    expect(grpc.StatusCode.INVALID_ARGUMENT, "LiteRT refused the model", runtimes_client.profile, onnx_sha,
           backend="litert")
    expect(grpc.StatusCode.INVALID_ARGUMENT, "not an ONNX model", runtimes_client.profile, tfl_sha,
           backend="torch")
    expect(grpc.StatusCode.INVALID_ARGUMENT, "'edgetpu' is not enabled", runtimes_client.profile, tfl_sha,
           backend="edgetpu")
    assert runtimes_client.profile(tfl_sha, backend="litert", protocol="fixed",
                                   protocol_params={"count": 3}).result["stats"]["count"] == 3


@pytest.mark.skipif(edgetpu_library() is not None, reason="this host has libedgetpu")
def test_without_libedgetpu_the_edgetpu_backend_is_not_offered_and_asking_for_it_fails_clearly(tmp_path: Path
                                                                                             ) -> None:
    availability = probe_backend("edgetpu")
    assert not availability.available and "libedgetpu is not installed" in availability.detail
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--backend", "edgetpu", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "backend 'edgetpu' cannot run on this host: libedgetpu" in done.stderr


def test_torch_flags_need_the_torch_backend(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--torch-device", "cuda", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "add --backend torch" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a CUDA GPU")
def test_asking_for_cuda_without_a_gpu_fails_at_start(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--backend", "torch", "--torch-device", "cuda", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "PyTorch sees no CUDA GPU" in done.stderr


def test_onnxruntime_cuda_is_offered_only_where_the_cuda_provider_exists() -> None:
    availability = probe_backend("onnxruntime-cuda")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert availability.available
    else:
        assert not availability.available and "no CUDAExecutionProvider" in availability.detail


def test_each_runtime_gives_its_own_per_op_profile(runtimes_client: AgentClient, tflite_model: bytes) -> None:
    """#37: the runtime's own profiler (onnxruntime's enable_profiling, torch.profiler, LiteRT's compiled-model
    profiler), outside the timed window."""
    sha, _ = runtimes_client.ensure_model(to_onnx_bytes(small_graph()))
    result = runtimes_client.profile(sha, backend="onnxruntime", protocol="fixed", protocol_params={"count": 20},
                                     op_profile=True).result
    ops = result["op_profile"]
    assert ops and all(op["time_ms"] > 0 and op["name"] and op["op_type"] for op in ops), ops
    assert "Conv" in {op["op_type"] for op in ops}
    assert sum(op["time_ms"] for op in ops) < 20 * result["latency_ms"]  # per inference, not a total
    plain = runtimes_client.profile(sha, backend="onnxruntime", protocol="fixed", protocol_params={"count": 5})
    assert plain.result["op_profile"] == []  # opt-in
    torch_ops = runtimes_client.profile(sha, backend="torch", protocol="fixed", protocol_params={"count": 5},
                                        op_profile=True).result["op_profile"]  # torch.profiler, a label per node
    exported = [node.name for node in onnx.load_from_string(to_onnx_bytes(small_graph())).graph.node]
    assert [op["name"] for op in torch_ops] == exported and all(op["time_ms"] > 0 for op in torch_ops)
    tflite = runtimes_client.ensure_model(tflite_model, "tflite")[0]
    litert = runtimes_client.profile(tflite, backend="litert", protocol="fixed", protocol_params={"count": 20},
                                     op_profile=True).result
    litert_ops = litert["op_profile"]  # XNNPACK's operators, named as benchmark_model names them
    assert [op["op_type"] for op in litert_ops].count("Convolution (NHWC, F32) IGEMM") == 2, litert_ops
    assert all(op["name"].startswith("[Delegate]:") for op in litert_ops)
    assert 0 < sum(op["time_ms"] for op in litert_ops) < 20 * litert["latency_ms"]


def test_a_runtime_without_an_op_profile_refuses_before_measuring(tmp_path: Path, tflite_model: bytes) -> None:
    """A model on a LiteRT delegate (the Edge TPU's, not on this host) keeps no profile of its own kernels:
    asking is refused with the reason, before a timed window is spent."""
    from hwnas.device_agent.backends.litert_backend import LiteRtModel, _interpreter_module
    from hwnas.device_agent.measure import MeasureOptions, measure

    path = tmp_path / "model.tflite"
    path.write_bytes(tflite_model)
    delegated = LiteRtModel(_interpreter_module().Interpreter(model_path=str(path)), 1, path, delegated=True)
    with pytest.raises(InvalidInput, match="covers the CPU only"):
        measure(delegated, MeasureOptions(protocol="fixed", protocol_params={"count": 5}, op_profile=True), None)


def test_litert_reports_the_models_own_memory_footprint(runtimes_client: AgentClient, tmp_path: Path) -> None:
    """#37 item 2 on LiteRT: the RSS a fresh process adds loading and running the .tflite, said so in
    memory_source; a batch of 64 adds at least its 64 inputs to the batch-1 figure."""
    from hwnas.controller.graph.model_formats import model_format

    pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
    space = get_space("nb201")
    graph = space.to_graph(space.sample(np.random.default_rng(0)))
    figures = {}
    for batch in (1, 64):
        data = model_format("tflite").export(graph.with_batch(batch), {})
        sha, _ = runtimes_client.ensure_model(data, "tflite")
        figures[batch] = runtimes_client.profile(sha, backend="litert", protocol="fixed",
                                                 protocol_params={"count": 3}, memory=True).result
    one, many = figures[1], figures[64]
    assert "fresh process" in one["memory_source"] and one["peak_memory_bytes"] > one["model_bytes"]
    assert many["peak_memory_bytes"] > one["peak_memory_bytes"] + 64 * 3 * 32 * 32 * 4
