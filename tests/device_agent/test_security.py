"""TLS, mutual TLS and bearer tokens between the controller's client and real agents on 127.0.0.1."""

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.certs import init_lab
from hwnas.controller.fleet.client import AgentCallError, AgentClient
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.device_agent.server import AgentConfig, AgentServer
from hwnas.protos.auth import ClientTls, TlsFiles


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lab")
    init_lab(out)
    return out


def serve(tmp_path: Path, **security) -> AgentServer:
    server = AgentServer(AgentConfig(name="secure", cache_dir=tmp_path / "cache"), "127.0.0.1", 0, **security)
    server.start()
    return server


def test_calls_without_or_with_a_wrong_token_are_refused_and_change_nothing(tmp_path, lab, tiny_model) -> None:
    token = (lab / "token").read_text().strip()
    server = serve(tmp_path, token=token)
    try:
        for offered, message in ((None, "missing bearer token"), ("x" * 64, "wrong bearer token")):
            with AgentClient(server.address, token=offered) as client:
                with pytest.raises(AgentCallError) as info:
                    client.upload(tiny_model)
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED and message in info.value.details
                with pytest.raises(AgentCallError) as info:
                    client.device_info()
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
        with AgentClient(server.address, token=token) as client:
            assert not client.has_model(__import__("hashlib").sha256(tiny_model).hexdigest())  # nothing stored
            sha, _ = client.ensure_model(tiny_model)
            assert client.profile(sha, protocol="fixed", protocol_params={"count": 3}).stats["count"] == 3
        channel = grpc.insecure_channel(server.address)  # health stays open for probes
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        server.stop()


def test_tls_and_mutual_tls(tmp_path, lab, tiny_model) -> None:
    server = serve(tmp_path, tls=TlsFiles(lab / "agent.pem", lab / "agent.key", client_ca=lab / "ca.pem"))
    try:
        with AgentClient(server.address, tls=ClientTls(lab / "ca.pem", lab / "controller.pem",
                                                       lab / "controller.key")) as client:
            client.wait_ready(5)
            sha, _ = client.ensure_model(tiny_model)
            assert client.profile(sha, protocol="fixed", protocol_params={"count": 2}).stats["count"] == 2
        with AgentClient(server.address, tls=ClientTls(lab / "ca.pem")) as no_client_cert:
            with pytest.raises(AgentCallError) as info:
                no_client_cert.device_info()
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
        with AgentClient(server.address) as plaintext:
            with pytest.raises(AgentCallError) as info:
                plaintext.device_info()
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_the_client_refuses_plaintext_off_loopback() -> None:
    with pytest.raises(ValueError, match="plaintext is allowed on loopback addresses only"):
        AgentClient("10.1.2.3:50151")
    AgentClient("localhost:50151").close()
    AgentClient("[::1]:50151").close()


def test_the_agent_cli_requires_tls_or_insecure_on_loopback(tmp_path) -> None:
    def serve_cli(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--cache-dir",
                               str(tmp_path / "c"), *flags], capture_output=True, text=True, timeout=60)

    done = serve_cli()
    assert done.returncode == 2 and "no TLS configured" in done.stderr
    done = serve_cli("--insecure", "--host", "0.0.0.0")
    assert done.returncode == 2 and "loopback addresses only, not to serve on 0.0.0.0" in done.stderr
    done = serve_cli("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(tmp_path / "missing.key"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_a_tls_agent_process_serves_the_profile_cli(tmp_path, lab, tiny_model, capsys) -> None:
    flags = ["--tls-cert", str(lab / "agent.pem"), "--tls-key", str(lab / "agent.key"),
             "--token-file", str(lab / "token")]
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_model)
    with LocalAgent(tmp_path / "cache", flags, insecure=False) as agent:
        assert any("TLS + token" in line for line in agent.output)
        common = ["profile", str(model), "--agent", agent.address, "--protocol", "fixed", "--param", "count=3"]
        assert main(common) == 2
        assert "no TLS configured" in capsys.readouterr().err
        assert main([*common, "--tls-ca", str(lab / "ca.pem")]) == 1
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        assert main([*common, "--tls-ca", str(lab / "ca.pem"), "--token-file", str(lab / "token"), "--json"]) == 0
        assert '"protocol": "fixed"' in capsys.readouterr().out


def test_certs_init_refuses_to_overwrite_without_force(tmp_path, capsys) -> None:
    assert main(["certs", "init", str(tmp_path / "lab"), "--host", "rpi4.lab"]) == 0
    assert (tmp_path / "lab" / "agent.key").stat().st_mode & 0o777 == 0o600
    assert main(["certs", "init", str(tmp_path / "lab")]) == 2
    assert "refusing to overwrite them (--force replaces them)" in capsys.readouterr().err
    assert main(["certs", "init", str(tmp_path / "lab"), "--force"]) == 0


def test_the_container_healthcheck_speaks_mutual_tls(tmp_path, lab) -> None:
    import os

    flags = ["--tls-cert", str(lab / "agent.pem"), "--tls-key", str(lab / "agent.key"),
             "--tls-client-ca", str(lab / "ca.pem")]
    with LocalAgent(tmp_path / "cache", flags, insecure=False) as agent:
        port = agent.address.rsplit(":", 1)[1]
        env = {**os.environ, "HWNAS_PORT": port, "HWNAS_TLS_CA": str(lab / "ca.pem"),
               "HWNAS_TLS_CLIENT_CA": str(lab / "ca.pem"), "HWNAS_TLS_CERT": str(lab / "agent.pem"),
               "HWNAS_TLS_KEY": str(lab / "agent.key")}
        probe = [sys.executable, "-m", "hwnas.device_agent.healthcheck"]
        assert subprocess.run(probe, env=env, timeout=30).returncode == 0
        without_cert = {k: v for k, v in env.items() if k != "HWNAS_TLS_CLIENT_CA"}
        assert subprocess.run(probe, env=without_cert, timeout=30).returncode == 1


def test_an_mtls_agent_refuses_another_agents_certificate_as_a_controller(tmp_path, lab, tiny_model) -> None:
    """Both certificates come from the lab CA; only the controller's carries the controller role."""
    from hwnas.protos.auth import certificate_roles

    assert certificate_roles((lab / "controller.pem").read_bytes()) == {"controller"}
    assert certificate_roles((lab / "agent.pem").read_bytes()) == {"agent"}
    server = serve(tmp_path, tls=TlsFiles(lab / "agent.pem", lab / "agent.key", client_ca=lab / "ca.pem"))
    try:
        with AgentClient(server.address, tls=ClientTls(lab / "ca.pem", lab / "agent.pem", lab / "agent.key")) as fake:
            with pytest.raises(AgentCallError) as info:
                fake.upload(tiny_model)
            assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
            assert "not an hwnas controller certificate (its roles: ['agent'])" in info.value.details
            assert fake.health() == "SERVING"  # the container health check presents the agent's certificate
        with AgentClient(server.address, tls=ClientTls(lab / "ca.pem", lab / "controller.pem",
                                                       lab / "controller.key")) as controller:
            assert not controller.has_model("ab" * 32)  # nothing was stored by the refused upload
            sha, _ = controller.ensure_model(tiny_model)
            assert controller.profile(sha, protocol="fixed", protocol_params={"count": 2}).stats["count"] == 2
    finally:
        server.stop()


@pytest.mark.parametrize(("client_tls", "says"), [
    ("wrong-ca", "the server's certificate is not signed by the CA this side trusts"),
    ("no-client-cert", "TLS handshake refused by the server: it requires a client certificate"),
    ("plaintext", "it likely speaks TLS while this side used plaintext"),
    ("wrong-name", "the server's certificate does not name other.lab"),
])
def test_a_tls_failure_says_which_side_refused_and_why(tmp_path, lab, client_tls: str, says: str) -> None:
    """It was reported as "no agent answered within 10 s"."""
    other = tmp_path / "other-lab"
    init_lab(other)
    tls = {"wrong-ca": ClientTls(other / "ca.pem", lab / "controller.pem", lab / "controller.key"),
           "no-client-cert": ClientTls(lab / "ca.pem"), "plaintext": None,
           "wrong-name": ClientTls(lab / "ca.pem", lab / "controller.pem", lab / "controller.key", "other.lab")}
    server = serve(tmp_path, tls=TlsFiles(lab / "agent.pem", lab / "agent.key", client_ca=lab / "ca.pem"))
    try:
        with AgentClient(server.address, tls=tls[client_tls]) as client:
            with pytest.raises(AgentCallError) as info:
                client.wait_ready(1)
        assert "no agent answered within 1 s" in info.value.details and says in info.value.details
    finally:
        server.stop()


def test_tls_to_a_plaintext_agent_says_the_agent_is_plaintext(tmp_path, lab) -> None:
    server = serve(tmp_path)
    try:
        with AgentClient(server.address, tls=ClientTls(lab / "ca.pem")) as client:
            with pytest.raises(AgentCallError) as info:
                client.wait_ready(1)
        assert "the server speaks plaintext (started with --insecure?)" in info.value.details
    finally:
        server.stop()
