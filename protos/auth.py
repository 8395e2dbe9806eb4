"""The authentication part of the wire contract, shared by agents and the controller.

A call carries ``authorization: Bearer <token>`` metadata when the agent requires a token. Plaintext
links are only ever allowed to loopback addresses.
"""

from __future__ import annotations

import ipaddress
import socket

TOKEN_HEADER = "authorization"


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
