"""``hwnas certs init DIR``: a small certificate authority and certificates for one lab.

Writes ``ca.pem``/``ca.key`` (keep the key offline once agents are issued), ``agent.pem``/``agent.key``
(server certificate for every agent, valid for the given host names and for localhost/loopback, usable
as a client certificate too so a container health check can reuse it), ``controller.pem``/
``controller.key`` (client certificate for mutual TLS, and server certificate for agents that
dial in) and ``token`` (a random bearer token). Each certificate's extended key usages also name its
hwnas role (``hwnas.protos.auth.ROLE_OIDS``): an agent requiring client certificates accepts only the
controller's, the controller's gateway only agents'. Keys and
the token are written with mode 0600. ECDSA P-256 keys: small and fast on Raspberry Pis.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from hwnas.protos.auth import ROLE_OIDS

FILES = ("ca.pem", "ca.key", "agent.pem", "agent.key", "controller.pem", "controller.key", "token")


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def init_lab(out_dir: Path, hosts: Sequence[str] = (), days: int = 825, overwrite: bool = False) -> list[Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [name for name in FILES if (out_dir / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds {existing}; refusing to overwrite them")
    now = datetime.datetime.now(datetime.timezone.utc)

    def key_pem(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def issue(subject: str, key, issuer_name, issuer_key, *, ca: bool, usages=(), sans=()) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("hwnas lab CA", ca_key, None, ca_key, ca=True)
    names = ["localhost", *hosts]
    sans = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    sans += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    agent_key = ec.generate_private_key(ec.SECP256R1())
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)  # each serves and calls
    agent_cert = issue("hwnas agent", agent_key, ca_cert.subject, ca_key, ca=False, sans=sans,
                       usages=(*both, x509.ObjectIdentifier(ROLE_OIDS["agent"])))
    controller_key = ec.generate_private_key(ec.SECP256R1())
    controller_cert = issue("hwnas controller", controller_key, ca_cert.subject, ca_key, ca=False, sans=sans,
                            usages=(*both, x509.ObjectIdentifier(ROLE_OIDS["controller"])))
    pem = serialization.Encoding.PEM
    outputs = {
        "ca.pem": (ca_cert.public_bytes(pem), False), "ca.key": (key_pem(ca_key), True),
        "agent.pem": (agent_cert.public_bytes(pem), False), "agent.key": (key_pem(agent_key), True),
        "controller.pem": (controller_cert.public_bytes(pem), False),
        "controller.key": (key_pem(controller_key), True),
        "token": (secrets.token_hex(32).encode() + b"\n", True),
    }
    for name, (data, private) in outputs.items():
        _write(out_dir / name, data, private)
    return [out_dir / name for name in FILES]
