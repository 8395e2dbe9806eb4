"""Names that would become paths or formulas: device keys, campaign and agent names are checked wherever they
enter (command lines, agents files, imports, the wire, records), and CSV cells never start a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import grpc
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.agents import load_agents, parse_agent
from hwnas.controller.fleet.campaign import CampaignPlan
from hwnas.controller.learning.jobs import artifact_dir
from hwnas.controller.reporting.spreadsheet import from_spreadsheet_safe
from hwnas.controller.store import InvalidRecord, JobSpec, MeasurementRecord, Store
from hwnas.controller.store.export import export
from hwnas.device_agent.cli import build_parser as agent_parser
from hwnas.protos import names
from hwnas.protos.hwnas.v1 import agent_pb2, controller_pb2

from .test_gateway import AGENT_ID, start_gateway, status_of, stub_for
from .test_store import ARCH, record

FORMULA = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("bad", ["../../x", "..", ".hidden", "a/b", "k\n", "", "has space", FORMULA, "x" * 201])
def test_a_device_key_that_could_be_a_path_or_a_formula_is_refused_by_name(bad: str) -> None:
    with pytest.raises(names.InvalidName, match="a device key must be"):
        names.device_key(bad)


def test_good_names_pass_and_labels_made_from_text_are_names() -> None:
    assert names.device_key("rpi4-cpu-ort") == "rpi4-cpu-ort" and names.device_key("a..b") == "a..b"
    assert names.agent_name("imported:nb201.csv:lat_ms_pixel3") and names.agent_name("pi@lab 07")
    for bad in (FORMULA, "-x", "@x", "+x", "a\tb", "a/b"):
        with pytest.raises(names.InvalidName):
            names.agent_name(bad)
    assert names.campaign_name(names.label_from("search:run (2)/é")) == "search:run -2---"


def test_predictor_train_with_a_climbing_device_key_writes_nothing_anywhere(tmp_path: Path, capsys) -> None:
    """`--devices ../../x` and then `predictor train` wrote outside the predictors folder."""
    work = tmp_path / "lab" / "sub"
    work.mkdir(parents=True)
    db = work / "ds.db"
    with pytest.raises(SystemExit) as exit_info:
        main(["predictor", "train", "--db", str(db), "--device", "../../x", "--kind", "ridge"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --device: a device key must be" in err and "'../../x'" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["latbench", "build", "--db", str(db), "--space", "nb201", "--devices", "ok,../x", "--sample", "2"])
    assert "argument --devices: a device key must be" in capsys.readouterr().err
    with pytest.raises(names.InvalidName):
        artifact_dir(db, "../../x", "ridge")  # the library refuses too, not only the command line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["lab", "sub"]


def test_agents_from_flags_and_files_and_plans_check_their_names(tmp_path: Path) -> None:
    with pytest.raises(names.InvalidName):
        parse_agent("../x=127.0.0.1:1")
    agents = tmp_path / "agents.toml"
    agents.write_text('[[agents]]\nkey = "../x"\naddress = "127.0.0.1:1"\n')
    with pytest.raises(ValueError, match=r"agents\[0\]\.key: a device key must be"):
        load_agents(agents)
    with pytest.raises(ValueError, match="campaign: a campaign name must be"):
        CampaignPlan(campaign=FORMULA, device_keys=["k"])
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        CampaignPlan(campaign="c", device_keys=["k"], batch_size=0)


def test_an_agent_with_a_formula_for_a_name_is_refused_on_the_wire_and_on_its_command_line(tmp_path: Path,
                                                                                           capsys) -> None:
    with Store(tmp_path / "ds.db") as store:
        gateway = start_gateway(store)
        channel, call = stub_for(gateway)
        try:
            code, msg = status_of(lambda: call("Register", controller_pb2.RegisterRequest(
                agent_id=AGENT_ID, device_key="k", device_info=agent_pb2.DeviceInfo(agent_name=FORMULA))))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "an agent name must be" in msg
            code, msg = status_of(lambda: call("Register", controller_pb2.RegisterRequest(
                agent_id=AGENT_ID, device_key="..", device_info=agent_pb2.DeviceInfo(agent_name="ok"))))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "a device key must be" in msg
            assert store.registered_agents() == []
        finally:
            channel.close()
            gateway.stop()
    for argv in (["serve", "--name", FORMULA], ["serve", "--controller", "h:1", "--device-key", "../x"],
                 ["serve", "--port", "70000"]):
        with pytest.raises(SystemExit) as exit_info:
            agent_parser().parse_args(argv)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "an agent name must be" in err and "a device key must be" in err
    assert "a port must be a whole number within 0..65535 (0 picks a free one), got '70000'" in err
    with pytest.raises(SystemExit):  # the controller's listening address: a traceback before
        main(["latbench", "build", "--db", str(tmp_path / "x.db"), "--space", "nb201", "--devices", "k",
              "--sample", "2", "--listen", "127.0.0.1:70000", "--insecure"])
    assert "argument --listen: a port must be a whole number within 0..65535" in capsys.readouterr().err


def test_a_record_cannot_carry_a_climbing_key_or_a_formula_agent_name(tmp_path: Path) -> None:
    spec = JobSpec(campaign="c", arch_id=ARCH.arch_id, device_key="k")
    with Store(tmp_path / "ds.db") as store:
        store.add_architectures([ARCH])
        store.enqueue([spec])
        job = store.lease("k", "w", 10)
        with pytest.raises(InvalidRecord, match="an agent name must be"):
            record(job, agent=FORMULA)
        with pytest.raises(InvalidRecord, match="a device key must be"):
            MeasurementRecord(**{**vars(record(job)), "device_key": "../k"})


def test_csv_cells_that_would_start_a_formula_are_quoted_and_read_back_as_they_were(tmp_path: Path) -> None:
    """Text such as =cmd|' /C calc'!A0 was written to the CSV as it is."""
    spec = JobSpec(campaign="c", arch_id=ARCH.arch_id, device_key="k")
    hostile = {"agent_version": FORMULA, "memory_source": "@SUM(A1)", "power": {"available": False,
                                                                               "unavailable_reason": "-2+3"}}
    with Store(tmp_path / "ds.db") as store:
        store.add_architectures([ARCH])
        store.enqueue([spec])
        job = store.lease("k", "w", 10)
        assert store.complete(MeasurementRecord(**{**vars(record(job)), **hostile}))
        assert export(store, tmp_path / "x.csv", "csv") == 1
    with (tmp_path / "x.csv").open(newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["agent_version"] == "'" + FORMULA and row["memory_source"] == "'@SUM(A1)"
    assert row["power_unavailable_reason"] == "'-2+3"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())
    assert [from_spreadsheet_safe(row[c]) for c in ("agent_version", "memory_source", "power_unavailable_reason",
                                                     "arch")] == [FORMULA, "@SUM(A1)", "-2+3", ARCH.arch]
    assert from_spreadsheet_safe("'quoted") == "'quoted"  # a quote that guards nothing is the text's own
