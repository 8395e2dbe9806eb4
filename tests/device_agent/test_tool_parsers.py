"""The tool parsers against real outputs of the vendors' tools (tests/device_agent/tool_outputs/README.md says
where each came from), and the TOML tool description's refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.measure import MeasureOptions
from hwnas.device_agent.tensors import InputSpec
from hwnas.device_agent.tools.backend import reduce, run_counts, signal_name
from hwnas.device_agent.tools.base import CheckIO, ToolOutputError, ToolRun
from hwnas.device_agent.tools.benchmark_app import BenchmarkAppTool
from hwnas.device_agent.tools.benchmark_model import BenchmarkModelTool, benchmark_model_tool, op_table
from hwnas.device_agent.tools.check_io import plan, split_raw
from hwnas.device_agent.tools.custom import CustomTool, ToolFileError
from hwnas.device_agent.tools.trtexec import TrtExecTool, exported_latencies, layer_profile

OUTPUTS = Path(__file__).parent / "tool_outputs"
EXAMPLES = Path(__file__).parents[2] / "device_agent" / "tools" / "examples"
RUN = ToolRun("/data/local/tmp/benchmark_model", "/data/local/tmp/hwnas-x/model.tflite", "/data/local/tmp/hwnas-x",
              threads=4, runs=50, warmup_runs=10, op_profile=True)


def read(name: str) -> str:
    return (OUTPUTS / name).read_text()


def test_benchmark_model_on_a_phone_gives_the_timed_statistics_cold_start_and_memory() -> None:
    figures = BenchmarkModelTool().parse(read("benchmark_model_android_mi11_cpu.txt"), {})
    assert figures.mean_ms == pytest.approx(249.684)
    assert figures.stats == pytest.approx({"count": 50, "min_ms": 247.067, "max_ms": 254.474, "mean_ms": 249.684,
                                           "std_ms": 1.442})
    assert figures.load_ms == pytest.approx(16.242) and figures.first_inference_ms == pytest.approx(360.262)
    assert figures.details["warmup_mean_ms"] == pytest.approx(304.586)
    assert figures.peak_memory_bytes == int(138.809 * 2**20)
    assert "peak memory footprint overall" in figures.memory_source


def test_benchmark_model_takes_the_timed_run_not_the_warm_up() -> None:
    figures = BenchmarkModelTool().parse(read("benchmark_model_android_espcn.txt"), {})
    assert figures.stats["count"] == 50 and figures.stats["min_ms"] == pytest.approx(32.641)  # warm-up: 15, 32.825
    assert figures.mean_ms == pytest.approx(33.2094) and figures.load_ms == pytest.approx(0.855)
    assert figures.peak_memory_bytes == int(12.8672 * 2**20)


def test_a_newer_benchmark_model_adds_percentiles_and_reports_its_memory_delta() -> None:
    figures = BenchmarkModelTool().parse(read("benchmark_model_board_ssd_mobilenet.txt"), {})
    assert figures.mean_ms == pytest.approx(1240.27) and figures.stats["median_ms"] == pytest.approx(1239.807)
    assert figures.details["p95_ms"] == pytest.approx(1247.415)
    assert figures.peak_memory_bytes == int(109.832 * 2**20) and "delta" in figures.memory_source


def test_benchmark_model_op_profile_is_the_regular_runs_run_order_table() -> None:
    ops = op_table(read("benchmark_model_android_mi11_nnapi_op_profile.txt"))
    assert len(ops) == 11  # the initialisation table (2 rows) and the summaries are not ops
    assert ops[0].op_type == "STRIDED_SLICE" and ops[0].time_ms == pytest.approx(2.118)
    assert ops[6].op_type == "TfLiteNnapiDelegate" and ops[6].time_ms == pytest.approx(79.010)
    assert ops[-1].name == "[Identity, Identity_1, Identity_2]:233"
    assert sum(op.time_ms for op in ops) == pytest.approx(158.7, abs=0.1)


def test_benchmark_model_refuses_output_without_its_timings() -> None:
    with pytest.raises(ToolOutputError, match="Inference timings"):
        BenchmarkModelTool().parse("STARTING!\nLoaded model x.tflite\n", {})


def test_benchmark_model_command_carries_the_delegate_threads_counts_and_profiling() -> None:
    argv = BenchmarkModelTool("/data/local/tmp/benchmark_model",
                              {"delegate": "nnapi", "nnapi_accelerator": "qti-dsp"}).command(RUN)
    assert argv[:2] == ["/data/local/tmp/benchmark_model", "--graph=/data/local/tmp/hwnas-x/model.tflite"]
    assert {"--num_runs=50", "--min_secs=0", "--warmup_runs=10", "--warmup_min_secs=0", "--num_threads=4",
            "--use_nnapi=true", "--nnapi_accelerator_name=qti-dsp", "--enable_op_profiling=true"} <= set(argv)
    assert "--use_gpu=true" in BenchmarkModelTool(options={"delegate": "gpu"}).command(RUN)
    assert "--use_hexagon=true" in BenchmarkModelTool(options={"delegate": "hexagon"}).command(RUN)
    with pytest.raises(ValueError, match="delegate must be one of cpu, xnnpack, gpu, nnapi, hexagon"):
        BenchmarkModelTool(options={"delegate": "npu"})
    with pytest.raises(ValueError, match="has no option"):
        BenchmarkModelTool(options={"precision": "fp16"})
    assert type(benchmark_model_tool("/opt/venv/bin/litert-benchmark")).__name__ == "LiteRtBenchmarkTool"


def test_trtexec_summary_gives_latency_percentiles_and_gpu_compute() -> None:
    figures = TrtExecTool().parse(read("trtexec_performance_summary.log"), {})
    assert figures.mean_ms == pytest.approx(7.60628)
    assert figures.stats == pytest.approx({"min_ms": 5.38672, "max_ms": 13.3664, "mean_ms": 7.60628,
                                           "median_ms": 7.16092, "p90_ms": 10.2996, "p99_ms": 12.9675})
    assert figures.details["gpu_compute_mean_ms"] == pytest.approx(7.58404)


def test_trtexec_on_a_jetson_gives_version_load_memory_and_the_layer_profile() -> None:
    text = read("trtexec_xavier_nx_dumpprofile.log")
    with pytest.raises(ToolOutputError, match="no performance summary"):  # --dumpProfile alone hides e2e timing
        TrtExecTool().parse(text, {})
    samples = '[{"startInMs": 0.0, "endOutMs": 9.9}, {"latencyMs": 9.5}]'
    figures = TrtExecTool().parse(text, {"times": samples})
    assert figures.samples_ms == pytest.approx([9.9, 9.5]) and figures.version == "TensorRT 8.5.2"
    assert figures.load_ms == pytest.approx(1892.24) and figures.peak_memory_bytes == 65 * 2**20
    ops = figures.op_profile
    assert len(ops) == 28 and ops[0].name == "[HostToDeviceCopy 0]" and ops[0].time_ms == pytest.approx(0.0543)
    assert ops[25].name == "{ForeignNode[lstm_W...Max_reduce_min]}" and ops[25].time_ms == pytest.approx(6.8952)


def test_trtexec_layer_profile_reads_the_numbers_first_layout_of_tensorrt_8_6() -> None:
    ops = layer_profile(read("trtexec_clip_profile_trt86.log"))
    assert [round(op.time_ms, 4) for op in ops] == [0.8925, 0.0043]
    assert ops[1].name.startswith("Reformatting CopyNode for Output Tensor 0 to {ForeignNode")
    with pytest.raises(ToolOutputError, match="exportTimes"):
        exported_latencies("[{}]")


def test_trtexec_command_asks_for_precision_counts_times_and_a_separate_profile_run() -> None:
    run = ToolRun("trtexec", "/tmp/s/model.onnx", "/tmp/s", 0, 200, 10, True)
    argv = TrtExecTool(options={"precision": "fp16"}).command(run)
    assert {"--onnx=/tmp/s/model.onnx", "--iterations=200", "--duration=0", "--fp16", "--dumpProfile",
            "--separateProfileRun", "--exportTimes=/tmp/s/times.json"} <= set(argv)
    assert "--int8" in TrtExecTool(options={"precision": "int8"}).command(run)
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, int8, best"):
        TrtExecTool(options={"precision": "tf32"})


def test_the_shipped_qnn_tool_file_reads_real_qnn_net_run_output() -> None:
    tool = CustomTool(str(EXAMPLES / "qnn-net-run.toml"))
    assert (tool.name, tool.model_format) == ("qnn-net-run", "onnx")
    figures = tool.parse(read("qnn_net_run_htp_profile_viewer.txt"), {})
    assert figures.mean_ms == pytest.approx(2.952) and figures.load_ms == pytest.approx(331.158)
    command = tool.command(ToolRun("qnn-net-run", "/tmp/s/model.onnx", "/tmp/s", 0, 100, 10, False))
    assert command[:2] == ["sh", "-c"] and "--num_inferences 100" in command[2] and "{" + "runs}" not in command[2]
    assert tool.rejection("ERROR - Conversion FAILED: op Foo") == "ERROR - Conversion FAILED: op Foo"


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\nformat = "onnx"\n', "command = '...' is required"),
    ('name = "x"\nformat = "dlc"\ncommand = "x {model}"\n[figures]\nmean_ms = {regex = "(1)"}', "format must be one"),
    ('name = "x"\nformat = "onnx"\ncommand = "x {modle}"\n[figures]\nmean_ms = {regex = "(1)"}', r"\['modle'\]"),
    ('name = "x"\nformat = "onnx"\ncommand = "x"\n[figures]\nmin_ms = {regex = "(1)"}', "mean_ms is required"),
    ('name = "x"\nformat = "onnx"\ncommand = "x"\n[figures]\nmean_ms = {regex = "1"}', "needs one \\(group\\)"),
    ('name = "x"\nformat = "onnx"\ncommand = "x"\n[figures]\nmean_ms = {json = "r", key = "a"}', "which \\[files\\]"),
    ('name = "x"\nformat = "onnx"\ncommand = "x"\n[figures]\nlatency = {regex = "(1)"}', "not known"),
    ('name = "trtexec"\nformat = "onnx"\ncommand = "x"\n[figures]\nmean_ms = {regex = "(1)"}', "built-in"),
    ('name = "x"\nformat = "onnx\n', "not valid TOML"),
])
def test_a_bad_tool_file_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "tool.toml"
    file.write_text(text)
    with pytest.raises(ToolFileError, match=message):
        CustomTool(str(file))


def test_protocols_map_onto_a_tools_run_counts_and_its_samples() -> None:
    assert run_counts(MeasureOptions(protocol="fixed", protocol_params={"count": 30}))[2:] == (30, 10)
    assert run_counts(MeasureOptions(warmup_runs=3))[2:] == (1000, 3)
    with pytest.raises(InvalidInput, match="tool backends take latbench or fixed"):
        run_counts(MeasureOptions(protocol="adaptive"))
    samples = [1.0, 2.0, 3.0, 100.0]
    name, outcome = reduce("fixed", {"count": 4.0}, samples, 4, 9.9)
    assert name == "fixed" and outcome.latency_ms == pytest.approx(26.5)  # the protocol's mean of the samples
    name, outcome = reduce("fixed", {"count": 4.0}, [], 4, 9.9)
    assert name == "fixed/tool-mean" and outcome.latency_ms == 9.9
    assert signal_name(139) == "SIGSEGV" and signal_name(-9) == "SIGKILL" and signal_name(1) == ""


# -- the output check through a tool (#37) ------------------------------------------------------------------
CHECK = CheckIO(inputs=(InputSpec("serving_default_args_0", (1, 3, 8, 8), "float32"),
                        InputSpec("mask:0", (1, 8), "float32")),
                outputs=(InputSpec("logits", (1, 10), "float32"), InputSpec("boxes", (None, 4), "float32")),
                folder="/data/local/tmp/hwnas-x")


def test_benchmark_model_is_fed_the_checks_files_by_position_and_writes_its_outputs() -> None:
    argv = BenchmarkModelTool().command(dataclasses.replace(RUN, check=CHECK))
    assert "--input_layer=serving_default_args_0,input1" in argv  # ':' cannot be carried: labelled by position
    assert "--input_layer_shape=1,3,8,8:1,8" in argv
    assert ("--input_layer_value_files=serving_default_args_0:/data/local/tmp/hwnas-x/check-input-0.bin,"
            "input1:/data/local/tmp/hwnas-x/check-input-1.bin") in argv
    assert "--output_filepath=/data/local/tmp/hwnas-x/check-outputs.bin" in argv
    assert not any(a.startswith("--output_filepath") for a in BenchmarkModelTool().command(RUN))


def test_raw_outputs_are_cut_by_the_models_shapes_and_a_size_that_does_not_add_up_is_refused() -> None:
    logits, boxes = np.arange(10, dtype="<f4"), np.arange(12, dtype="<f4") * -1
    found = BenchmarkModelTool().read_outputs(logits.tobytes() + boxes.tobytes(), CHECK)
    assert list(found) == ["logits", "boxes"]
    assert found["logits"].shape == (1, 10) and np.array_equal(found["logits"].ravel(), logits)
    assert np.array_equal(found["boxes"], boxes)  # the one dynamic output takes what the others leave
    with pytest.raises(ToolOutputError, match="holds 36 bytes"):
        BenchmarkModelTool().read_outputs(logits.tobytes()[:36], CHECK)
    with pytest.raises(ToolOutputError, match="do not add up"):
        split_raw(b"\0" * 40, (InputSpec("a", (None,), "float32"), InputSpec("b", (None,), "float32")))


def test_trtexec_is_fed_the_checks_files_and_its_exported_outputs_come_back_in_the_models_order() -> None:
    run = ToolRun("trtexec", "/tmp/s/model.onnx", "/tmp/s", 0, 200, 10, False,
                  dataclasses.replace(CHECK, folder="/tmp/s", suffix="json"))
    argv = TrtExecTool().command(run)
    assert ("--loadInputs='serving_default_args_0':/tmp/s/check-input-0.bin,'mask:0':/tmp/s/check-input-1.bin"
            in argv)
    assert "--exportOutput=/tmp/s/check-outputs.json" in argv and not any(a.startswith("--shapes") for a in argv)
    resized = TrtExecTool().command(dataclasses.replace(run, check=dataclasses.replace(run.check, resized=True)))
    assert "--shapes='serving_default_args_0':1x3x8x8,'mask:0':1x8" in resized
    # a real --exportOutput file: trtexec keeps bindings in a hash map, the model's order is restored by name
    written = (OUTPUTS / "trtexec_export_output.json").read_bytes()
    model = dataclasses.replace(CHECK, outputs=(InputSpec("probs_gaze", (1, 5), "float32"),
                                                InputSpec("probs_phone", (1, 5), "float32")))
    found = TrtExecTool().read_outputs(written, model)
    assert list(found) == ["probs_gaze", "probs_phone"] and found["probs_gaze"].shape == (1, 5)
    assert found["probs_gaze"][0, 4] == pytest.approx(0.961798)
    with pytest.raises(ToolOutputError, match=r"does not hold the model's outputs \['logits', 'boxes'\]"):
        TrtExecTool().read_outputs(written, CHECK)
    with pytest.raises(ToolOutputError, match="does not hold"):
        TrtExecTool().read_outputs(b"[{", CHECK)


def test_a_tool_that_cannot_give_outputs_skips_the_check_and_says_why(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    reason = plan(CustomTool(str(EXAMPLES / "qnn-net-run.toml")), model, 0, {})
    assert isinstance(reason, str) and "writes no outputs a check can read" in reason
    # benchmark_app and litert-benchmark write none either; a companion run by their console script's Python does
    assert "not a Python console script" in plan(BenchmarkAppTool(), model, 0, {}, python=None)
    assert "on the gpu here" in plan(benchmark_model_tool("litert-benchmark", {"delegate": "gpu"}), model, 0, {}, "py")
    assert "could not be read" in plan(BenchmarkAppTool(), model, 0, {}, python="/usr/bin/python3")  # no graph
    assert "could not be read" in plan(TrtExecTool(), model, 0, {})
