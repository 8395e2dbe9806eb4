"""Owning a listening port, for both servers of the wire contract (agents and the controller's gateway).

gRPC enables SO_REUSEPORT by default on Linux, so a second server on a port already in use starts
without complaint and the kernel splits connections between the two: one device key would then collect
measurements from two runtimes. Every hwnas server turns it off and refuses a port in use by name.
"""

from __future__ import annotations

from concurrent import futures

import grpc

from hwnas.protos.argtypes import arg_type
from hwnas.protos.auth import RoleInterceptor, TlsFiles, TokenInterceptor

OWN_PORT = (("grpc.so_reuseport", 0),)


class PortInUse(OSError):
    """The address is held by another process (or another server in this one)."""


def new_server(max_workers: int, thread_name_prefix: str, token: str | None,
               maximum_concurrent_rpcs: int | None = None, client_role: str | None = None) -> grpc.Server:
    """A gRPC server that owns its port, with the bearer-token check when a token is set and, under mutual
    TLS, the check that client certificates carry ``client_role`` ("controller" or "agent")."""
    interceptors: list[grpc.ServerInterceptor] = [TokenInterceptor(token)] if token else []
    if client_role:
        interceptors.append(RoleInterceptor(client_role))
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix),
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        interceptors=interceptors or None,
        options=OWN_PORT,
    )


MAX_PORT = 65535


def port_number(text: str) -> int:
    """A TCP port as a flag gives it: 0 (pick a free one) to 65535; gRPC would take 70000 as 70000 - 65536."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"a port must be a whole number within 0..{MAX_PORT} (0 picks a free one), got {text!r}")
    return port


def host_port(address: str) -> str:
    """``address`` if it is HOST:PORT with a port within 0..65535; ValueError saying what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"an address must look like HOST:PORT (e.g. 0.0.0.0:50051), got {address!r}")
    port_number(port)
    return address


port_arg = arg_type(port_number)  # ``--port``
address_arg = arg_type(host_port)  # ``--listen``, ``--agent``, ``--controller``


def listen(server: grpc.Server, address: str, tls: TlsFiles | None) -> int:
    """Bind ``address`` ('HOST:PORT', port 0 picks a free one) and return the port; PortInUse names it."""
    host_port(address)
    try:
        port = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.5x raises where older releases returned 0
        port = 0
    if port == 0:
        raise PortInUse(f"cannot listen on {address}: the port is in use by another process (or the address is "
                        f"not on this host); stop that process or pick another port")
    return port
