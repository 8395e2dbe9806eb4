"""Agents that dial out to the controller: registration, heartbeats, leases, faults with real processes."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet import campaign, run_campaign
from hwnas.controller.fleet.agents import AgentEndpoint
from hwnas.controller.fleet.certs import init_lab
from hwnas.controller.fleet.gateway import Gateway
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.fleet.models import ModelKey
from hwnas.controller.fleet.scheduler import Scheduler
from hwnas.controller.spaces.catalog import sample
from hwnas.controller.store import RegisteredAgent, Store
from hwnas.device_agent.dialout import ControllerLink
from hwnas.device_agent.server import AgentConfig, AgentServicer
from hwnas.protos.auth import TlsFiles, call_metadata
from hwnas.protos.hwnas.v1 import agent_pb2, controller_pb2, controller_pb2_grpc

from ..sync import wait_for
from .test_campaign import (
    NB201,
    assert_exactly_one_row_per_job,
    distinct_archs,
    free_port,
    kill_mid_campaign,
    kill_victim_mid_job,
    plan,
)

AGENT_ID = "a" * 32


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "ds.db") as s:
        yield s


def start_gateway(store: Store, lease_s: float = 2.0, **kw) -> Gateway:
    return Gateway(store, "127.0.0.1:0", lease_s=lease_s, **kw).start()


def stub_for(gateway: Gateway, token: str | None = None):
    channel = grpc.insecure_channel(gateway.address)
    stub = controller_pb2_grpc.ControllerStub(channel)

    def call(method: str, request, **kw):
        return getattr(stub, method)(request, timeout=10, metadata=call_metadata(token), **kw)

    return channel, call


def register(call, agent_id: str = AGENT_ID, key: str = "k", name: str = "probe") -> None:
    call("Register", controller_pb2.RegisterRequest(agent_id=agent_id, device_key=key,
                                                    device_info=agent_pb2.DeviceInfo(agent_name=name)))


def status_of(fn) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code(), info.value.details()


def test_bad_calls_get_clear_statuses_and_change_nothing(store: Store) -> None:
    campaign.enqueue(store, NB201, distinct_archs(2, seed=1), plan(["k"]))
    campaign.enqueue(store, NB201, distinct_archs(1, seed=2), plan(["other"]))
    gateway = start_gateway(store)
    channel, call = stub_for(gateway)
    try:
        code, msg = status_of(lambda: register(call, agent_id="short"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "agent_id" in msg
        code, msg = status_of(lambda: register(call, key="has space"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "device_key" in msg
        code, msg = status_of(lambda: register(call, key="k\n"))  # a trailing newline is not a valid key
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "device_key" in msg
        code, msg = status_of(lambda: register(call, agent_id=AGENT_ID + "\n"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "agent_id" in msg
        assert store.registered_agents() == []
        for method, request in (("Heartbeat", controller_pb2.HeartbeatRequest(agent_id=AGENT_ID)),
                                ("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID)),
                                ("ReportJob", controller_pb2.ReportJobRequest(agent_id=AGENT_ID, job_id=1))):
            code, msg = status_of(lambda m=method, r=request: call(m, r))
            assert code == grpc.StatusCode.FAILED_PRECONDITION and "Register" in msg, method
        register(call)
        code, msg = status_of(lambda: call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID,
                                                                                      wait_seconds=600)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "wait_seconds" in msg
        code, msg = status_of(lambda: list(call("FetchModel", controller_pb2.FetchModelRequest(
            agent_id=AGENT_ID, sha256="0" * 64))))
        assert code == grpc.StatusCode.NOT_FOUND and "no model" in msg
        code, msg = status_of(lambda: call("ReportJob", controller_pb2.ReportJobRequest(agent_id=AGENT_ID,
                                                                                        job_id=999)))
        assert code == grpc.StatusCode.NOT_FOUND
        other_job = next(j for j in range(1, 4) if store.job(j).device_key == "other")
        code, msg = status_of(lambda: call("ReportJob", controller_pb2.ReportJobRequest(
            agent_id=AGENT_ID, job_id=other_job, failure=controller_pb2.JobFailure(code="INTERNAL"))))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "other" in msg
        lease = call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID))
        assert lease.job_id and lease.request.options.protocol == "fixed"
        code, msg = status_of(lambda: call("ReportJob", controller_pb2.ReportJobRequest(agent_id=AGENT_ID,
                                                                                        job_id=lease.job_id)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "result or a failure" in msg
        wrong = agent_pb2.ProfileResult(model_sha256="f" * 64, latency_ms=1.0)
        code, msg = status_of(lambda: call("ReportJob", controller_pb2.ReportJobRequest(
            agent_id=AGENT_ID, job_id=lease.job_id, result=wrong)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "model" in msg
        assert list(store.measurements()) == []
        assert store.job(lease.job_id).state == "leased"  # nothing a bad call did changed the job
    finally:
        channel.close()
        gateway.stop()


def test_a_restarted_controller_serves_the_model_of_a_job_leased_before_it_started(store: Store) -> None:
    campaign.enqueue(store, NB201, distinct_archs(1, seed=6), plan(["k"]))
    first = start_gateway(store)
    channel, call = stub_for(first)
    register(call)
    lease = call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID))
    channel.close()
    first.stop()
    second = start_gateway(store)  # a fresh process knows no model hashes yet
    channel, call = stub_for(second)
    try:
        chunks = list(call("FetchModel", controller_pb2.FetchModelRequest(agent_id=AGENT_ID,
                                                                          sha256=lease.request.model_sha256)))
        assert chunks[0].header.sha256 == lease.request.model_sha256
        assert sum(len(c.data) for c in chunks[1:]) == chunks[0].header.size_bytes == lease.model_size_bytes
    finally:
        channel.close()
        second.stop()


def test_a_wrong_or_missing_token_is_unauthenticated_and_registers_nothing(store: Store) -> None:
    gateway = start_gateway(store, token="s3cret-token-0123456789")
    try:
        for token, expected in ((None, "missing bearer token"), ("wrong-token-0123456789", "wrong bearer token")):
            channel, call = stub_for(gateway, token)
            code, msg = status_of(lambda c=call: register(c))
            channel.close()
            assert (code, msg) == (grpc.StatusCode.UNAUTHENTICATED, expected)
        assert store.registered_agents() == []
        channel, call = stub_for(gateway, "s3cret-token-0123456789")
        register(call)
        channel.close()
        assert [a.agent_id for a in store.registered_agents()] == [AGENT_ID]
    finally:
        gateway.stop()


def test_missed_heartbeats_mark_an_agent_unhealthy_and_requeue_its_job(store: Store, capsys) -> None:
    campaign.enqueue(store, NB201, distinct_archs(2, seed=3), plan(["k"]))
    gateway = start_gateway(store, lease_s=1.0)
    channel, call = stub_for(gateway)
    beating, silent = "b" * 32, "s" * 32
    try:
        register(call, beating, name="beating")
        register(call, silent, name="silent")
        jobs = {who: call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=who)).job_id
                for who in (beating, silent)}
        assert all(jobs.values())

        def beat_until_the_silent_one_is_stale_and_its_job_requeued() -> bool:
            beat = controller_pb2.HeartbeatRequest(agent_id=beating, job_id=jobs[beating])
            assert call("Heartbeat", beat).job_id == jobs[beating]
            silent_agent = next(a for a in store.registered_agents() if a.name == "silent")
            return store.job(jobs[silent]).state == "queued" and not silent_agent.healthy(time.time())

        wait_for(beat_until_the_silent_one_is_stale_and_its_job_requeued,
                 "the silent agent to go stale and the reaper to requeue its job")
        assert store.job(jobs[beating]).state == "leased"  # heartbeats kept its lease
        requeued = store.job(jobs[silent])
        assert requeued.state == "queued" and requeued.lease_owner is None
        health = {a.name: a.healthy(time.time()) for a in store.registered_agents()}
        assert health == {"beating": True, "silent": False}
        assert main(["fleet", "ls", "--db", str(store.url.removeprefix("sqlite:///"))]) == 1
        out = capsys.readouterr().out
        assert "stale (silent" in next(line for line in out.splitlines() if "silent" in line)
        assert "healthy" in next(line for line in out.splitlines() if "beating" in line)
        # The silent agent comes back: its registration is kept, but the job it held is no longer its.
        assert call("Heartbeat", controller_pb2.HeartbeatRequest(agent_id=silent, job_id=jobs[silent])).job_id == 0
    finally:
        channel.close()
        gateway.stop()


def in_process_agent(tmp_path: Path, name: str, gateway: Gateway, key: str = "k") -> tuple[ControllerLink,
                                                                                          threading.Thread]:
    servicer = AgentServicer(AgentConfig(name=name, cache_dir=tmp_path / name))
    link = ControllerLink(servicer, gateway.address, key)
    thread = threading.Thread(target=link.run, daemon=True)
    thread.start()
    return link, thread


def test_dial_out_agents_and_a_dialled_agent_share_one_key(tmp_path: Path, store: Store) -> None:
    from ..conftest import start_agent

    n = 12
    campaign.enqueue(store, NB201, distinct_archs(n, seed=7), plan(["k"], count=50))
    done: list[str] = []
    gateway = start_gateway(store, on_done=lambda key, arch: done.append(arch))
    links = [in_process_agent(tmp_path, f"out{k}", gateway) for k in range(2)]
    dialled = start_agent(tmp_path / "in")
    try:
        run_campaign(store, [AgentEndpoint("k", dialled.address)], lease_s=10,
                              device_keys=["k"], dial_in=True)
        rows = assert_exactly_one_row_per_job(store, n)
        assert {r["agent_name"] for r in rows} <= {"out0", "out1", "test-agent"}
        assert len(done) == sum(r["agent_name"] != "test-agent" for r in rows)
        assert {a.name for a in store.registered_agents()} == {"out0", "out1"}
        # Each dial-out agent holds every model it measured, fetched from the controller into its cache.
        # (It may hold one more: a job whose lease it lost under load was then measured elsewhere.)
        for link, _ in links:
            measured = {gateway.servicer.models.sha256(ModelKey(r["arch_id"])) for r in rows
                        if r["agent_name"] == link.servicer.config.name}
            assert all(link.servicer.cache.size_of(sha) for sha in measured)
            assert link.servicer.cache.usage().models >= len(measured)
    finally:
        for link, thread in links:
            link.stop()
            thread.join(30)
        dialled.stop()
        gateway.stop()


def test_sigkill_a_dial_out_agent_mid_measurement_its_job_completes_on_the_other(tmp_path: Path,
                                                                                  store: Store) -> None:
    n = 4
    gateway = start_gateway(store, lease_s=2.0, scheduler=Scheduler(store, isolated=["k"]))
    dial = ["--controller", gateway.address, "--device-key", "k"]

    def enqueue_and_run() -> None:  # queued once both agents poll, so the helper sees the first leases happen
        campaign.enqueue(store, NB201, distinct_archs(n, seed=5), plan(["k"], count=1500))
        run_campaign(store, [], device_keys=["k"], dial_in=True, isolated=["k"])

    try:
        with LocalAgent(tmp_path / "c1", [*dial, "--name", "victim"], listen=False) as victim, \
                LocalAgent(tmp_path / "c2", [*dial, "--name", "survivor"], listen=False):
            runner = threading.Thread(target=enqueue_and_run, daemon=True)  # a failed check must not hang pytest

            def is_victim(owner: str) -> bool:
                return owner in {a.agent_id for a in store.registered_agents() if a.name == "victim"}

            kill_victim_mid_job(store, victim, runner, n, is_victim)
    finally:
        gateway.stop()


def test_sigkill_the_listening_controller_then_rerun_finishes_with_exactly_the_planned_rows(tmp_path: Path) -> None:
    n = 10
    db = tmp_path / "ds.db"
    port = free_port()
    cmd = [sys.executable, "-m", "hwnas.controller.cli", "latbench", "build", "--space", "nb201", "--devices", "k",
           "--sample", str(n), "--seed", "4", "--protocol", "fixed", "--param", "count=300", "--db", str(db),
           "--listen", f"127.0.0.1:{port}", "--lease-seconds", "2", "--quiet", "--insecure",
           "--no-golden"]  # exactly-once is the point: a loaded host drifted 2x between runs, quarantining k
    with LocalAgent(tmp_path / "c", ["--controller", f"127.0.0.1:{port}", "--device-key", "k",
                                     "--log-level", "INFO"], listen=False) as agent:
        kill_mid_campaign(cmd, db, n)
        try:
            again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the resumed build hung; agent said:\n{agent.stderr_text()}") from exc
        assert again.returncode == 0, again.stderr + agent.stderr_text()
        assert "0 new job(s)" in again.stdout
    planned = len({NB201.to_graph(x).arch_id for x in sample(NB201, n, 4)})
    with Store(db) as store:
        assert_exactly_one_row_per_job(store, planned)


def test_dial_out_over_mutual_tls_with_a_token_and_a_refused_token(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    init_lab(lab)
    token = (lab / "token").read_text().strip()
    with Store(tmp_path / "ds.db") as store:
        campaign.enqueue(store, NB201, distinct_archs(2, seed=8), plan(["k"]))
        server_tls = TlsFiles(lab / "controller.pem", lab / "controller.key", lab / "ca.pem")
        gateway = Gateway(store, "127.0.0.1:0", server_tls, token=token, lease_s=5).start()
        try:
            tls = ["--controller-ca", str(lab / "ca.pem"), "--tls-cert", str(lab / "agent.pem"),
                   "--tls-key", str(lab / "agent.key"), "--controller-server-name", "localhost"]
            bad = tmp_path / "bad-token"
            bad.write_text("x" * 32)
            refused = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--controller",
                                      gateway.address, "--device-key", "k", "--cache-dir", str(tmp_path / "c0"), *tls,
                                      "--token-file", str(bad)], capture_output=True, text=True, timeout=60)
            assert refused.returncode == 2 and "UNAUTHENTICATED: wrong bearer token" in refused.stderr
            assert store.registered_agents() == []
            with LocalAgent(tmp_path / "c1", ["--controller", gateway.address, "--device-key", "k", *tls,
                                              "--token-file", str(lab / "token")], insecure=False, listen=False):
                run_campaign(store, [], device_keys=["k"], dial_in=True)
            assert_exactly_one_row_per_job(store, 2)
        finally:
            gateway.stop()


def test_agent_flags_for_dialling_out_are_checked(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--cache-dir", str(tmp_path),
                               *args],
                              capture_output=True, text=True, timeout=60)

    missing_key = run("--controller", "127.0.0.1:1", "--insecure")
    assert missing_key.returncode == 2 and "--device-key" in missing_key.stderr
    no_tls = run("--controller", "10.1.2.3:50060", "--device-key", "k")
    assert no_tls.returncode == 2 and "--controller-ca" in no_tls.stderr
    remote_plain = run("--controller", "10.1.2.3:50060", "--device-key", "k", "--insecure")
    assert remote_plain.returncode == 2 and "not to dial the controller at 10.1.2.3:50060" in remote_plain.stderr
    bad_address = run("--controller", "nohostport", "--device-key", "k", "--insecure")
    assert bad_address.returncode == 2 and "HOST:PORT" in bad_address.stderr


def test_latbench_build_listen_flags_are_checked(tmp_path: Path, capsys) -> None:
    base = ["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "2", "--db", str(tmp_path / "d")]
    assert main([*base, "--listen", "127.0.0.1:0"]) == 2
    assert "--listen needs --tls-cert/--tls-key" in capsys.readouterr().err
    assert main([*base, "--listen", "10.1.2.3:50060", "--insecure"]) == 2
    assert "loopback addresses only" in capsys.readouterr().err
    assert main([*base, "--listen", "127.0.0.1:0", "--insecure", "--require-client-cert"]) == 2
    assert "--require-client-cert needs" in capsys.readouterr().err
    assert main(base) == 2
    assert "--listen HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # nothing was queued by a refused command


def test_a_gateway_on_a_port_in_use_refuses_to_start_naming_the_port(store: Store) -> None:
    from hwnas.protos.listen import PortInUse

    first = Gateway(store, "127.0.0.1:0").start()
    try:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{first.port}.*in use"):
            Gateway(store, f"127.0.0.1:{first.port}")
    finally:
        first.stop()


@pytest.mark.parametrize("isolated", [False, True])
def test_dial_out_agents_on_one_host_hold_one_job_at_a_time_unless_isolated(tmp_path: Path, store: Store,
                                                                            isolated: bool) -> None:
    from .test_campaign import overlapping_pairs

    campaign.enqueue(store, NB201, distinct_archs(6, seed=7), plan(["pc-ort", "pc-other"], count=300))
    gateway = Gateway(store, "127.0.0.1:0", lease_s=10,
                      scheduler=Scheduler(store, isolated=["pc-ort", "pc-other"] if isolated else ())).start()
    links = [in_process_agent(tmp_path, name, gateway, key=name) for name in ("pc-ort", "pc-other")]
    try:
        deadline = time.time() + 120
        while sum(c["done"] for c in store.counts().values()) < 12 and time.time() < deadline:
            time.sleep(0.2)
        rows = assert_exactly_one_row_per_job(store, 12)
    finally:
        for link, _ in links:
            link.stop()
        gateway.stop(grace_s=0)  # ends the links' long polls
        for _, thread in links:
            thread.join(30)
    assert (overlapping_pairs(rows) > 0) if isolated else (overlapping_pairs(rows) == 0)


def test_a_stopped_dial_out_agent_is_stale_within_seconds_and_can_be_forgotten(tmp_path: Path, capsys) -> None:
    """With the default 120 s lease, `fleet ls` showed a stopped agent healthy for ~100 s, and kept it forever."""
    from hwnas.controller.fleet import registered

    db = tmp_path / "ds.db"
    with Store(db) as store:
        gateway = Gateway(store, "127.0.0.1:0", lease_s=120.0).start()
        try:
            with LocalAgent(tmp_path / "c", ["--controller", gateway.address, "--device-key", "k", "--name", "pi"],
                            listen=False) as agent:
                deadline = time.time() + 30
                while not store.registered_agents() and time.time() < deadline:
                    time.sleep(0.1)
                assert registered(store)[0].health == "healthy"
                assert agent.stop() == 0
            last_seen = store.registered_agents()[0].last_seen_at_unix_s
            assert registered(store, now=last_seen + 5)[0].health == "healthy"  # one heartbeat late: fine
            assert registered(store, now=last_seen + 20)[0].health.startswith("stale (silent 20 s")
        finally:
            gateway.stop()
    assert main(["fleet", "forget", "--db", str(db), "nobody"]) == 2
    assert "no registered agent named ['nobody']" in capsys.readouterr().err
    assert main(["fleet", "forget", "--db", str(db), "pi"]) == 0
    assert "forgot pi" in capsys.readouterr().out
    with Store(db) as store:
        assert store.registered_agents() == []
        for agent_id, seen in (("f" * 16, time.time()), ("o" * 16, time.time() - 60)):
            store.register_agent(RegisteredAgent(agent_id, "k", agent_id[:4], "0", "peer", "onnxruntime", seen, seen,
                                                 120.0), "{}")
    assert main(["fleet", "forget", "--db", str(db), "--stale"]) == 0
    assert "1 registration(s) forgotten" in capsys.readouterr().out
    with Store(db) as store:
        assert [a.agent_id for a in store.registered_agents()] == ["f" * 16]


def test_stopping_an_idle_dial_out_agent_ends_its_long_poll_at_once(tmp_path: Path, store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle agent waits in LeaseJob's long poll; SIGTERM waited for the poll to run out (10 s) before the
    agent could exit. With the longest poll the gateway allows (60 s), the link must stop when told."""
    from hwnas.controller.fleet.gateway import ControllerServicer
    from hwnas.device_agent import dialout

    polling = threading.Event()
    lease_job = ControllerServicer.LeaseJob

    def entered(self, request, context):
        polling.set()
        return lease_job(self, request, context)

    monkeypatch.setattr(ControllerServicer, "LeaseJob", entered)
    monkeypatch.setattr(dialout, "LEASE_WAIT_S", 60.0)
    gateway = start_gateway(store)
    try:
        link, thread = in_process_agent(tmp_path, "idle", gateway)
        assert polling.wait(60), "the agent never asked for a job"
        link.stop()
        thread.join(30)  # bounds a hang only: without the fix the link waits out the 60 s poll
        assert not thread.is_alive(), "the link waited for its long poll to run out"
    finally:
        gateway.stop(grace_s=0)


@pytest.mark.parametrize("latency_ms", [-5.0, float("inf"), float("nan")])
def test_a_reported_figure_that_cannot_be_true_is_refused_and_its_job_measured_again(store: Store,
                                                                                     latency_ms: float) -> None:
    """ReportJob with latency -5 or inf was stored and exported; NaN marked the job done with no record."""
    campaign.enqueue(store, NB201, distinct_archs(1, seed=8), plan(["k"]))
    gateway = start_gateway(store)
    channel, call = stub_for(gateway)
    try:
        register(call)
        lease = call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID))
        bad = agent_pb2.ProfileResult(model_sha256=lease.request.model_sha256, latency_ms=latency_ms,
                                      batch_size=1, agent_name="probe")
        code, msg = status_of(lambda: call("ReportJob", controller_pb2.ReportJobRequest(
            agent_id=AGENT_ID, job_id=lease.job_id, result=bad)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "latency_ms" in msg, msg
        job = store.job(lease.job_id)
        assert (job.state, job.attempts) == ("queued", 1)  # the attempt counts; the job is measured again
        assert "invalid result from probe" in store.job_states([job.job_key])[job.job_key][1]
        assert list(store.measurements()) == []
        again = call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID))
        assert again.job_id == lease.job_id
    finally:
        channel.close()
        gateway.stop()


def test_one_agent_holds_one_lease_however_many_lease_calls_it_makes_at_once(store: Store) -> None:
    """Six concurrent LeaseJob calls of one agent got it six leases."""
    from concurrent.futures import ThreadPoolExecutor

    campaign.enqueue(store, NB201, distinct_archs(6, seed=9), plan(["k"]))
    gateway = start_gateway(store, lease_s=30.0)
    channel, call = stub_for(gateway)
    try:
        register(call)

        def lease():
            try:
                return call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID, wait_seconds=1)).job_id
            except grpc.RpcError as exc:
                return exc.code()

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: lease(), range(6)))
        assert len(store.leased()) == 1, answers
        held = store.leased()[0].id
        assert set(answers) <= {held, grpc.StatusCode.RESOURCE_EXHAUSTED} and held in answers
        # asked again (its reply lost), the agent gets the job it holds, not a second one
        assert lease() == held and len(store.leased()) == 1
    finally:
        channel.close()
        gateway.stop()


def test_registrations_beyond_the_cap_are_refused_until_one_goes_stale(store: Store) -> None:
    """500 registrations were accepted without limit."""
    gateway = start_gateway(store, max_agents=3)
    channel, call = stub_for(gateway)
    try:
        for k in range(3):
            register(call, agent_id=f"agent-{k:04d}", name=f"a{k}")
        code, msg = status_of(lambda: register(call, agent_id="agent-9999", name="late"))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 3 agents" in msg
        register(call, agent_id="agent-0001", name="a1")  # one already registered may register again
        assert len(store.registered_agents()) == 3
    finally:
        channel.close()
        gateway.stop()


def test_a_megabyte_failure_message_is_kept_and_shown_cut_short(store: Store) -> None:
    """A 1 MB failure message from an agent was printed (and logged) in full."""
    from hwnas.controller.fleet.client import AgentCallError
    from hwnas.controller.reporting.tables import MESSAGE_CHARS

    campaign.enqueue(store, NB201, distinct_archs(1, seed=10), plan(["k"]))
    gateway = start_gateway(store)
    channel, call = stub_for(gateway)
    try:
        register(call)
        lease = call("LeaseJob", controller_pb2.LeaseJobRequest(agent_id=AGENT_ID))
        call("ReportJob", controller_pb2.ReportJobRequest(agent_id=AGENT_ID, job_id=lease.job_id,
                                                          failure=controller_pb2.JobFailure(code="INTERNAL",
                                                                                            message="x" * 2**20)))
        error = store.job_states([store.job(lease.job_id).job_key])
        (_, last_error), = error.values()
        assert len(last_error) < MESSAGE_CHARS + 200 and "more characters" in last_error
    finally:
        channel.close()
        gateway.stop()
    shown = str(AgentCallError("127.0.0.1:1", "Profile", grpc.StatusCode.INTERNAL, "y" * 2**20))
    assert len(shown) < MESSAGE_CHARS + 200 and shown.endswith(f"({2**20 - MESSAGE_CHARS} more characters)")
