"""How a ``Lab`` reaches its agents: TLS from the folder ``hwnas certs init`` wrote, and the bearer token."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.controller.errors import SettingError, UserError

if TYPE_CHECKING:
    from hwnas.protos.auth import ClientTls, TlsFiles


def client_security(tls: Any, token: str | Path | None) -> tuple[ClientTls | None, str | None]:
    """``tls``: None (plaintext, which agents allow on loopback only), a ``ClientTls``, or the folder of
    ``hwnas certs init`` (ca.pem, and controller.pem/.key for agents that require client certificates).
    ``token``: the token itself, or the path of its file."""
    return _tls(tls), _token(token)


def listen_tls(listen: str | None, tls: Any) -> TlsFiles | None:
    """How a lab serves agents that dial in on ``listen``: with the controller certificate of the ``tls``
    folder (``hwnas certs init``), or in plaintext on a loopback address only."""
    from hwnas.protos.auth import TlsFiles, check_plaintext, host_of

    if not listen:
        return None
    if isinstance(tls, (str, Path)) and (Path(tls) / "controller.pem").is_file():
        return TlsFiles(Path(tls) / "controller.pem", Path(tls) / "controller.key")
    if tls is not None:
        raise UserError("tls", "must be the folder `hwnas certs init` wrote (its controller.pem) to serve agents "
                               "that dial in with TLS")
    try:
        check_plaintext(host_of(listen), f"listen on {listen} without tls")
    except ValueError as exc:
        raise UserError("listen", f"{exc}; give tls= the folder `hwnas certs init` wrote") from None
    return None


def _tls(tls: Any) -> ClientTls | None:
    from hwnas.protos.auth import ClientTls

    if tls is None or isinstance(tls, ClientTls):
        return tls
    if not isinstance(tls, (str, Path)):
        raise UserError("tls", f"must be the folder `hwnas certs init` wrote or a ClientTls, got a "
                               f"{type(tls).__name__}")
    folder = Path(tls)
    if not (folder / "ca.pem").is_file():
        raise UserError("tls", f"{folder} has no ca.pem: give the folder `hwnas certs init --out DIR` wrote")
    cert, key = folder / "controller.pem", folder / "controller.key"
    both = cert.is_file() and key.is_file()
    return ClientTls(folder / "ca.pem", cert if both else None, key if both else None)


def _token(token: str | Path | None) -> str | None:
    if token is None:
        return None
    if isinstance(token, Path) or (isinstance(token, str) and Path(token).is_file()):
        try:
            text = Path(token).read_text().strip()
        except OSError as exc:
            raise UserError("token", f"{token}: cannot read the token file ({exc.strerror or exc})") from None
    else:
        text = token.strip()
    if not text:
        raise UserError("token", "is empty; give the agents' bearer token or the path of its file")
    return text


def submitter(cert: Path | None, token_name: str | None) -> str:
    """Who submits jobs, for the audit: the subject of the client certificate shown to agents, else the name
    of the token file held, else the local user at this host."""
    import getpass
    import os
    import socket

    if cert:
        try:
            from cryptography import x509

            return f"certificate {x509.load_pem_x509_certificate(Path(cert).read_bytes()).subject.rfc4514_string()}"
        except (OSError, ValueError) as exc:
            raise SettingError("tls_cert", f"{cert}: cannot read the certificate: {exc}") from None
    if token_name:
        return f"token {token_name}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"
