"""The security part of the wire contract, shared by agents and the controller.

Both sides serve gRPC (agents serve ``DeviceAgent``; the controller serves ``Controller`` to agents that
dial out) and both sides call the other, so TLS files, client credentials and the bearer-token check
live here, once. A call carries ``authorization: Bearer <token>`` metadata when the peer requires a
token; the token is compared in constant time and a call without it, or with a wrong one, is refused
with UNAUTHENTICATED before any handler runs. The health service stays open so probes and container
health checks need no secret; it reveals nothing. Plaintext links are only ever allowed to loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc

TOKEN_HEADER = "authorization"
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def bearer(token: str) -> str:
    return f"Bearer {token}"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (localhost)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_plaintext(host: str, doing: str) -> None:
    """The plaintext-on-loopback rule, its one home: without TLS, a process serves on, or dials, loopback
    addresses only. ``doing`` says what was asked ("serve on 0.0.0.0", "dial 10.0.0.7:50151").
    """
    if not is_loopback(host):
        raise ValueError(f"plaintext is allowed on loopback addresses only, not to {doing}; use TLS (certificates "
                         "from `hwnas certs init`)")


def host_of(address: str) -> str:
    """'10.0.0.7:50151' -> '10.0.0.7'; '[::1]:50151' -> '::1'."""
    return address.rsplit(":", 1)[0].strip("[]")


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


# Extended key usages naming an hwnas role, beside serverAuth/clientAuth (UUID-based OIDs, ITU-T X.667).
# Both kinds of certificate serve and call (agents dial out, the controller serves dial-out agents), so the
# standard usages cannot tell them apart; these can.
_ROLE_ARC = "2.25.267713882888880030011680122413570531288"
ROLE_OIDS = {"controller": f"{_ROLE_ARC}.1", "agent": f"{_ROLE_ARC}.2"}


def certificate_roles(pem: bytes) -> set[str]:
    """The hwnas roles ("controller", "agent") a PEM certificate's extended key usages grant."""
    from cryptography import x509  # only servers that require client certificates need it

    try:
        usages = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except (x509.ExtensionNotFound, ValueError):
        return set()
    granted = {oid.dotted_string for oid in usages.value}
    return {role for role, oid in ROLE_OIDS.items() if oid in granted}


class RoleInterceptor(grpc.ServerInterceptor):
    """Mutual TLS proves a client certificate comes from the lab's CA; this checks it is the right *kind*.

    Without it, an agent requiring client certificates accepted another agent's certificate as a controller.
    Health checks stay open (a container's check presents the agent's own certificate).
    """

    def __init__(self, role: str) -> None:
        if role not in ROLE_OIDS:
            raise ValueError(f"unknown role {role!r}; known: {sorted(ROLE_OIDS)}")
        self.role = role
        self._verdicts: dict[bytes, str] = {}  # certificate -> "" (allowed) or why not

    def _refusal(self, context: grpc.ServicerContext) -> str:
        certs = context.auth_context().get("x509_pem_cert") or []
        if not certs:
            return f"this server requires a client certificate with the hwnas {self.role} role"
        pem = certs[0]
        if pem not in self._verdicts:
            roles = certificate_roles(pem)
            self._verdicts[pem] = "" if self.role in roles else (
                f"the client certificate is not an hwnas {self.role} certificate (its roles: "
                f"{sorted(roles) or 'none'}); issue the {self.role}'s own with hwnas certs init")
        return self._verdicts[pem]

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method in OPEN_METHODS:
            return handler
        return _guarded(handler, self._refusal)


def _guarded(handler, refusal):
    """The same handler, refusing with PERMISSION_DENIED whenever ``refusal(context)`` names a reason."""

    def wrap(behavior):
        def guarded(request_or_iterator, context):
            reason = refusal(context)
            if reason:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
            return behavior(request_or_iterator, context)

        return guarded

    kinds = (("unary_unary", grpc.unary_unary_rpc_method_handler),
             ("unary_stream", grpc.unary_stream_rpc_method_handler),
             ("stream_unary", grpc.stream_unary_rpc_method_handler),
             ("stream_stream", grpc.stream_stream_rpc_method_handler))
    for attribute, make in kinds:
        behavior = getattr(handler, attribute)
        if behavior is not None:
            return make(wrap(behavior), request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
    return handler


@dataclass(frozen=True)
class TlsFiles:
    """A server's certificate and key; ``client_ca`` set: clients must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        client_ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=client_ca, require_client_auth=client_ca is not None)


@dataclass(frozen=True)
class ClientTls:
    """Trust ``ca`` for the server's certificate; ``cert``/``key`` present a client certificate (mutual TLS)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # the name to expect in the server's certificate, if not the address's host

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def open_channel(address: str, tls: ClientTls | None) -> grpc.Channel:
    """A TLS channel, or plaintext when ``tls`` is None, which only a loopback address may use."""
    if tls is None:
        check_plaintext(host_of(address), f"dial {address}")
        return grpc.insecure_channel(address)
    options = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
    return grpc.secure_channel(address, tls.credentials(), options=options)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return ((TOKEN_HEADER, bearer(token)),) if token else None


# What gRPC's connection errors mean, in the order they are looked for: (needle in the error, explanation).
# ``{side}`` is "TLS" or "plaintext": what this side spoke.
_CONNECT_FAILURES = (
    ("WRONG_VERSION_NUMBER", "TLS handshake failed: the server speaks plaintext (started with --insecure?) and this "
                             "side TLS"),
    ("Hostname Verification", "TLS handshake failed on this side: the server's certificate does not name {host} "
                              "(pass the name it has with --tls-server-name, or re-issue it: hwnas certs init "
                              "--host {host})"),
    ("CERTIFICATE_EXPIRED", "TLS handshake failed: a certificate has expired (re-issue: hwnas certs init)"),
    ("Tls handshake failed", "TLS handshake failed on this side: the server's certificate is not signed by the "
                             "CA this side trusts (wrong --tls-ca / --controller-ca?)"),
    ("Connection refused", "nothing listens at {address} (connection refused)"),
)


def explain_connect_failure(details: str, address: str, tls: ClientTls | None) -> str:
    """Why a channel to ``address`` could not connect, from the gRPC error ``details``, for a person."""
    host = (tls.server_name if tls is not None else None) or host_of(address)
    for needle, meaning in _CONNECT_FAILURES:
        if needle in details:
            return meaning.format(host=host, address=address)
    if "Socket closed" in details or "Connection reset" in details:
        if tls is not None:
            return ("TLS handshake refused by the server: it requires a client certificate signed by its CA "
                    "(mutual TLS: give this lab's --tls-cert/--tls-key), or it is shutting down")
        return ("the server closed the connection: it likely speaks TLS while this side used plaintext "
                "(give --tls-ca / --controller-ca), or it is shutting down")
    return details
