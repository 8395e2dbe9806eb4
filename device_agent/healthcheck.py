"""``python -m hwnas.device_agent.healthcheck``: exit 0 when the local agent's health service says SERVING.

For container HEALTHCHECKs. Reads the agent's own settings from the environment: HWNAS_PORT (50151),
HWNAS_TLS_CA (trust for the agent's certificate; unset means plaintext loopback), and when the agent
requires client certificates (HWNAS_TLS_CLIENT_CA set) presents HWNAS_TLS_CERT/HWNAS_TLS_KEY, which
`hwnas certs init` issues for both server and client use.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(port: int, ca: str | None, cert: str | None, key: str | None, timeout_s: float = 3.0) -> bool:
    target = f"127.0.0.1:{port}"
    if ca:
        creds = grpc.ssl_channel_credentials(
            open(ca, "rb").read(),
            open(key, "rb").read() if key else None,
            open(cert, "rb").read() if cert else None,
        )
        channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    else:
        channel = grpc.insecure_channel(target)
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        return response.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def main() -> int:
    env = os.environ
    mutual = bool(env.get("HWNAS_TLS_CLIENT_CA"))
    ok = check(int(env.get("HWNAS_PORT", "50151")), env.get("HWNAS_TLS_CA"),
               env.get("HWNAS_TLS_CERT") if mutual else None, env.get("HWNAS_TLS_KEY") if mutual else None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
