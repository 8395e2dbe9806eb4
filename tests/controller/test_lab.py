"""``hwnas.Lab``, the library's face, against real agents on 127.0.0.1: the same records as the CLI, every
model form it takes, campaigns that resume, and errors that name the argument."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hwnas
from hwnas.controller.errors import DeviceError, UserError
from hwnas.device_agent.server import AgentServer

FIXED = {"protocol": "fixed", "params": {"count": 5}}
SAME = ("job_key", "arch_id", "device_key", "backend", "protocol", "protocol_params", "batch_size", "input_shape",
        "model_format", "agent_name", "agent_version", "model_bytes")


def test_the_api_and_the_cli_give_the_same_record(agent: AgentServer, tiny_model: bytes, tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    model.write_bytes(tiny_model)
    cli = subprocess.run([sys.executable, "-m", "hwnas.controller.cli", "profile", str(model), "--agent",
                          agent.address, "--insecure", "--protocol", "fixed", "--param", "count=5", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)["record"]
    with hwnas.Lab(tmp_path / "lab.db", agents={"profile": agent.address}) as lab:
        record = lab.profile(model, device="profile", **FIXED).result(timeout=120)
    from_api = record.to_dict()
    assert set(from_api) == set(from_cli)
    assert {k: from_api[k] for k in SAME} == {k: from_cli[k] for k in SAME}
    assert record.latency_ms > 0 and record.stats["count"] == 5


def test_every_model_form_is_measured_as_the_same_network(agent: AgentServer, tiny_model: bytes,
                                                          tmp_path: Path) -> None:
    """A path, its bytes and the ModelProto are one model (one arch_id); a torch module and a CG are measured."""
    import onnx
    import torch

    from hwnas.controller.cli.demo import small_cnn

    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": agent.address}) as lab:
        jobs = lab.profile_many([path, tiny_model, onnx.load_from_string(tiny_model)], devices=["cpu"], **FIXED)
        torch_job = lab.profile(net, device="cpu", input_shape=(1, 3, 16, 16), **FIXED)
        cg_job = lab.profile(small_cnn(8, blocks=1), device="cpu", **FIXED)
        records = [job.result(timeout=120) for job in [*jobs, torch_job, cg_job]]
    assert len({r.arch_id for r in records[:3]}) == 1
    assert records[3].input_shape == [1, 3, 16, 16]
    assert all(r.latency_ms > 0 and r.device_key == "cpu" for r in records)
    assert [job.model for job in jobs] == ["tiny.onnx", jobs[1].model, jobs[2].model]


def test_a_campaign_fills_the_dataset_and_the_same_call_measures_nothing_twice(agent: AgentServer,
                                                                               tiny_model: bytes,
                                                                               tmp_path: Path) -> None:
    """Also after a profile: the lab's fleet is open and idle when the campaign's jobs are queued."""
    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": agent.address}, golden=False) as lab:
        assert lab.profile(tiny_model, device="cpu", **FIXED).result(timeout=120).latency_ms > 0
        first = lab.latbench(devices=["cpu"], space="nb201", sample=6, progress=False, **FIXED)
        summary = first.wait(timeout=300).result()
        jobs = len(first.job_keys)  # 6 networks, fewer where two are one CG
        assert (summary.done, summary.failed) == (jobs, 0) and jobs >= 5
        assert first.progress() == {"cpu": {"queued": 0, "leased": 0, "done": jobs, "failed": 0}}
        again = lab.latbench(devices=["cpu"], space="nb201", sample=6, progress=False, **FIXED).result(timeout=300)
        table = lab.dataset(device="cpu")
    assert again.done == jobs and len(table) == jobs  # the second call queued nothing new
    assert set(table["device_key"]) == {"cpu"} and (table["latency_ms"] > 0).all()


def test_errors_name_the_argument_and_the_fix(agent: AgentServer, tiny_model: bytes, tmp_path: Path) -> None:
    import torch

    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": agent.address}) as lab:
        cases = {
            "device": lambda: lab.profile(tiny_model, device="gpu"),
            "model": lambda: lab.profile(tmp_path / "missing.onnx", device="cpu"),
            "input_shape": lambda: lab.profile(torch.nn.ReLU(), device="cpu"),
        }
        for field, call in cases.items():
            with pytest.raises(UserError) as caught:
                call()
            assert caught.value.field == field, caught.value
        with pytest.raises(UserError, match="model is a builtins.dict; give a torch.nn.Module"):
            lab.profile({"not": "a model"}, device="cpu")
        with pytest.raises(UserError, match="space"):
            lab.latbench(devices=["cpu"], space="no-such-space")
        with pytest.raises(UserError, match="evals must be >= 1"):
            lab.search(device="cpu", evals=0)
    with pytest.raises(UserError, match="agents"):
        hwnas.Lab(tmp_path / "lab.db", agents=["127.0.0.1:1"])


def test_a_device_that_fails_a_model_raises_a_device_error(agent: AgentServer, tiny_model: bytes,
                                                          tmp_path: Path) -> None:
    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": agent.address}) as lab:
        job = lab.profile(b"these bytes are no ONNX model", device="cpu", **FIXED)
        assert job.wait(timeout=120).error and job.profiled is None  # known once settled, before result()
        with pytest.raises(DeviceError) as caught:
            job.result(timeout=120)
        good = lab.profile(tiny_model, device="cpu", **FIXED).wait(timeout=120)
        assert good.error == "" and good.profiled is not None and good.profiled.uploaded
    assert caught.value.device == "cpu" and isinstance(caught.value, hwnas.HwnasError)


def test_a_device_that_does_not_answer_raises_a_device_error(tmp_path: Path) -> None:
    from benchmarks.common import free_port

    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": f"127.0.0.1:{free_port()}"}, connect_timeout_s=1) as lab:
        with pytest.raises(DeviceError, match="cpu"):
            lab.profile(b"x" * 64, device="cpu").result(timeout=60)
        with pytest.raises(DeviceError, match="does not answer"):
            lab.latbench(devices=["cpu"], sample=2, progress=False)


def test_a_campaign_checks_every_agent_of_its_keys_before_measuring(agent: AgentServer, tmp_path: Path) -> None:
    from benchmarks.common import free_port

    dead = f"127.0.0.1:{free_port()}"
    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": [agent.address, dead]}, connect_timeout_s=1) as lab:
        with pytest.raises(DeviceError, match=f"no answer from: cpu={dead}"):
            lab.latbench(devices=["cpu"], sample=2, progress=False)


def test_devices_say_health_backends_and_host(agent: AgentServer, tmp_path: Path) -> None:
    with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": agent.address}) as lab:
        [device] = lab.devices()
    assert (device.key, device.host, device.healthy) == ("cpu", "127.0.0.1", True)
    assert "onnxruntime" in device.backends


def test_a_lab_reaches_agents_over_mutual_tls_with_the_labs_token(tmp_path: Path, tiny_model: bytes) -> None:
    """``tls=`` the folder ``hwnas certs init`` wrote, ``token=`` its token file; a wrong token is refused."""
    from hwnas.controller.fleet.certs import init_lab
    from hwnas.device_agent.server import AgentConfig
    from hwnas.protos.auth import TlsFiles

    certs = tmp_path / "certs"
    init_lab(certs)
    server = AgentServer(AgentConfig(name="secure", cache_dir=tmp_path / "cache"), "127.0.0.1", 0,
                         tls=TlsFiles(certs / "agent.pem", certs / "agent.key", client_ca=certs / "ca.pem"),
                         token=(certs / "token").read_text().strip())
    server.start()
    try:
        with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": server.address}, tls=certs, token=certs / "token") as lab:
            assert lab.profile(tiny_model, device="cpu", **FIXED).result(timeout=120).latency_ms > 0
        with hwnas.Lab(tmp_path / "lab.db", agents={"cpu": server.address}, tls=certs, token="x" * 64) as lab:
            with pytest.raises(DeviceError, match="bearer token"):
                lab.profile(tiny_model, device="cpu", **FIXED).result(timeout=120)
    finally:
        server.stop()
    with pytest.raises(UserError, match="no ca.pem"):
        hwnas.Lab(tmp_path / "lab.db", tls=tmp_path)


def test_agents_that_dial_in_measure_a_labs_campaign(tmp_path: Path) -> None:
    """``listen=``: a dial-out agent (its own process) reaches the lab and measures its campaign."""
    from hwnas.controller.fleet.local_agent import LocalAgent

    with hwnas.Lab(tmp_path / "lab.db", listen="127.0.0.1:0", golden=False) as lab:
        address = lab.listen_address
        with LocalAgent(tmp_path / "cache", ["--controller", address, "--device-key", "k"], listen=False):
            campaign = lab.latbench(devices=["k"], sample=3, progress=False, **FIXED)
            summary = campaign.result(timeout=300)
    assert (summary.done, summary.failed) == (len(campaign.job_keys), 0) and summary.done >= 2
    with pytest.raises(UserError, match="listen .*plaintext is allowed on loopback addresses only"):
        hwnas.Lab(tmp_path / "lab.db", listen="0.0.0.0:0")
