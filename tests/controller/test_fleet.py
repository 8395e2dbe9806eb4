"""`hwnas fleet ls` against real agents: health, identity, current job and queue depth."""

import threading
import time
from pathlib import Path

from hwnas.controller.cli.main import main
from hwnas.controller.fleet import AgentEndpoint, campaign, run_campaign
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.spaces import get_space
from hwnas.controller.spaces.catalog import sample
from hwnas.controller.store import Store

from ..conftest import start_agent


def test_fleet_ls_shows_each_agent_and_a_dead_one(tmp_path: Path, capsys) -> None:
    alive = start_agent(tmp_path / "c")
    try:
        agents = tmp_path / "agents.toml"
        agents.write_text(f'[[agents]]\nkey = "cpu"\naddress = "{alive.address}"\n\n'
                          '[[agents]]\nkey = "pi"\naddress = "127.0.0.1:1"\n')
        assert main(["fleet", "ls", "--agents", str(agents), "--insecure"]) == 1  # one agent is down
        out = capsys.readouterr().out
        cpu = next(line for line in out.splitlines() if line.startswith("cpu "))
        assert "SERVING" in cpu and "test-agent" in cpu and "onnxruntime" in cpu
        assert "unreachable (UNAVAILABLE)" in next(line for line in out.splitlines() if line.startswith("pi "))
        assert main(["fleet", "ls", "--agents", str(agents)]) == 2
        assert "no TLS configured" in capsys.readouterr().err
    finally:
        alive.stop()


def test_fleet_ls_shows_the_job_an_agent_is_measuring_and_the_queue(tmp_path: Path, capsys) -> None:
    space = get_space("nb201")
    with LocalAgent(tmp_path / "c") as agent, Store(tmp_path / "ds.db") as store:
        campaign.enqueue(store, space, sample(space, 4, seed=1), campaign.CampaignPlan(
            campaign="t", device_keys=["cpu"], protocol="fixed", protocol_params={"count": 2000}))
        runner = threading.Thread(target=run_campaign,
                                  args=(store, [AgentEndpoint("cpu", agent.address)]))
        runner.start()
        while not store.leased():
            time.sleep(0.02)
        agents = tmp_path / "agents.toml"
        agents.write_text(f'[[agents]]\nkey = "cpu"\naddress = "{agent.address}"\n')
        assert main(["fleet", "ls", "--agents", str(agents), "--db", str(tmp_path / "ds.db"), "--insecure"]) == 0
        line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("cpu "))
        assert "(fixed)" in line and line.rstrip().split()[-1] in {"1", "2", "3"}
        runner.join(120)
