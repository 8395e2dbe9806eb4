"""Who may talk to an agent: TLS (optionally mutual) and a bearer token checked on every call.

Plaintext is allowed only when asked for explicitly and only on a loopback address, so an agent is
never reachable unencrypted from the lab network by accident. The token is compared in constant time;
a call without it, or with a wrong one, is refused with UNAUTHENTICATED before any handler runs.
The health service stays open so probes and container health checks need no secret; it reveals nothing.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from protos.auth import TOKEN_HEADER, bearer, is_loopback

__all__ = ["OPEN_METHODS", "TlsFiles", "TokenInterceptor", "env_path", "is_loopback", "read_token"]

OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"token in {path} is shorter than 16 characters")
    return token


class TokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = bearer(token).encode()

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method in OPEN_METHODS:
            return continuation(handler_call_details)
        offered = dict(handler_call_details.invocation_metadata or ()).get(TOKEN_HEADER, "")
        if hmac.compare_digest(offered.encode(), self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        message = "missing bearer token" if not offered else "wrong bearer token"
        return _refusal(handler, message)


def _refusal(handler, message: str):
    """A handler of the same streaming shape that refuses without touching the request."""

    def refuse(_request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is None:
        return None
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: clients must present a certificate signed by it (mutual TLS)

    def server_credentials(self) -> grpc.ServerCredentials:
        client_ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=client_ca, require_client_auth=client_ca is not None)


def env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
