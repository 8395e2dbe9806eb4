"""Flags and helpers several ``hwnas`` commands share: security, spaces, protocol parameters, errors."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from hwnas.protos import names
from hwnas.protos.argtypes import arg_type


def db_target(text: str) -> str | Path:
    """``--db``: a SQLite file, or a SQLAlchemy URL kept as text (as a Path its '//' would fold to '/')."""
    return text if "://" in text else Path(text)


def dataset_exists(db: str | Path) -> bool:
    """A SQLite file must exist; a server's database is found, or not, when it is opened."""
    return not isinstance(db, Path) or db.exists()


DEVICE_KEY = arg_type(names.device_key)
DEVICE_KEYS = arg_type(names.device_keys)
CAMPAIGN = arg_type(names.campaign_name)


def whole(minimum: int):
    """An argparse ``type``: a whole number >= ``minimum``, or one usage line naming the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds >= 0 (NaN and inf are refused, not waited on)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def sampled(space, n: int, seed: int) -> list[list[int]]:
    """``catalog.sample``, saying on stderr when the space has fewer networks than asked for."""
    from hwnas.controller.spaces.catalog import sample, sample_note

    archs = sample(space, n, seed)
    note = sample_note(space, n, len(archs))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return archs


@contextlib.contextmanager
def waiting(what: str) -> Iterator[None]:
    """Say ``what`` is under way on stderr, and on a terminal how long it has taken, every second, until it
    ends: a first measurement may spend minutes rebuilding or compiling a network on the agent, silently."""
    print(f"{what} ...", file=sys.stderr, flush=True)
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0):
            print(f"\r  {time.monotonic() - started:.0f} s", end="", file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, daemon=True) if sys.stderr.isatty() else None
    if ticker:
        ticker.start()
    try:
        yield
    finally:
        done.set()
        if ticker:
            ticker.join()
            print(file=sys.stderr)


@contextlib.contextmanager
def warnings_summarised() -> Iterator[None]:
    """The warnings of a long run said once each, at the end, not once per fit or prediction batch with the
    source path of the warning (`predictor transfer` printed 16 a run): predictors' ``OutsideDomainWarning``s
    as one line, any other warning as its kind, its first message and how often it came."""
    from hwnas.predictors import OutsideDomainWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        ours = [w for w in caught if issubclass(w.category, OutsideDomainWarning)]
        others: dict[type, list[warnings.WarningMessage]] = {}
        for other in caught:
            if not issubclass(other.category, OutsideDomainWarning):
                others.setdefault(other.category, []).append(other)
    if ours:
        print(f"note: {len(ours)} prediction batch(es) included architectures outside what the predictor was "
              f"trained on; their predictions are unvouched for (first: {ours[0].message})", file=sys.stderr)
    for category, said in others.items():
        print(f"note: {category.__name__} x{len(said)} (first: {str(said[0].message).strip()})", file=sys.stderr)


def param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not (key and sep) or not math.isfinite(float(value)):
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"protocol parameter must look like runs=20 (a finite number): "
                                         f"{text!r}") from None


def submitter(args: argparse.Namespace) -> str:
    """Who submits a command's jobs, for the audit: the subject of the client certificate it shows agents, else
    the name of the token file it holds, else the local user at this host."""
    from hwnas.controller.lab.security import submitter as named

    token = getattr(args, "token_file", None)
    return named(getattr(args, "tls_cert", None), Path(token).name if token else None)


def connector(args: argparse.Namespace):
    """An address -> AgentClient factory with the TLS and token the flags ask for."""
    import functools

    from hwnas.controller.fleet.client import AgentClient

    tls, token = client_security(args)
    return functools.partial(AgentClient, tls=tls, token=token)


def client_security(args: argparse.Namespace):
    """(ClientTls or None, token or None) as the flags ask; ValueError naming the flag when they cannot work."""
    from hwnas.protos.auth import ClientTls

    if not args.tls_ca and not args.insecure:
        raise ValueError("no TLS configured: pass --tls-ca (and --tls-cert/--tls-key for mutual TLS), "
                         "or --insecure for plaintext to a loopback agent")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    tls = ClientTls(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name) if args.tls_ca else None
    token = None
    if args.token_file:
        token = args.token_file.read_text().strip()
    return tls, token


def add_client_security(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("security", "TLS to agents, or --insecure for plaintext to loopback agents")
    group.add_argument("--tls-ca", type=Path, help="CA certificate that signed the agents' certificates")
    group.add_argument("--tls-cert", type=Path, help="the controller's certificate: shown to agents requiring "
                                                     "mutual TLS, and served with --listen")
    group.add_argument("--tls-key", type=Path, help="its private key")
    group.add_argument("--tls-server-name", help="name to expect in the agent's certificate (default: its host)")
    group.add_argument("--token-file", type=Path, help="bearer token the agents require (and, with --listen, "
                                                       "that agents dialling in must present)")
    group.add_argument("--insecure", action="store_true", help="plaintext; loopback agents only")


def space_options(args: argparse.Namespace) -> dict:
    options = {}
    if args.resolution is not None:
        options["resolution"] = args.resolution
    if args.classes is not None:
        options["num_classes"] = args.classes
    if args.sequence is not None:
        options["sequence"] = args.sequence
    return options


# Settings whose flag is not "--" + the setting's name with dashes.
FLAG_OF = {"latency_max_ms": "--latency-max", "predictors": "--predictor", "budget": "--evals",
           "golden_every_jobs": "--golden-every", "golden_every_s": "--golden-minutes"}


def flag_of(setting: str) -> str:
    return FLAG_OF.get(setting, "--" + setting.replace("_", "-"))


def fail(command: str, error: Exception) -> int:
    """Print the error as ``hwnas COMMAND: ...`` (a bad setting named by its flag) and return exit code 2."""
    from hwnas.controller.errors import SettingError

    message = error.naming(flag_of(error.setting)) if isinstance(error, SettingError) else str(error)
    print(f"hwnas {command}: {message}", file=sys.stderr)
    return 2


def report_failures(command: str, evaluator) -> bool:
    """The one failure report of every caller of the evaluator (search, AutoGO, AutoBuild build, predictor
    layers): how many of its evaluations failed and the most frequent causes, on stderr. Whether any failed."""
    return report_causes(command, evaluator.failure_causes(), len(evaluator.history))


def report_causes(command: str, causes: Sequence[tuple[str, int]], evaluations: int) -> bool:
    """``report_failures`` from the causes and the count (a search run's result carries them)."""
    if causes:
        from hwnas.controller.reporting.tables import failure_summary

        print(f"hwnas {command}: of {evaluations} evaluations, {failure_summary(causes)}", file=sys.stderr)
    return bool(causes)


def server_tls(args: argparse.Namespace):
    """Server TLS for --listen: the controller's certificate, and the lab CA for mutual TLS."""
    from hwnas.protos.auth import TlsFiles, check_plaintext, host_of

    if args.tls_cert and args.tls_key:
        return TlsFiles(args.tls_cert, args.tls_key, args.tls_ca if args.require_client_cert else None)
    if args.require_client_cert:
        raise ValueError("--require-client-cert needs --tls-cert/--tls-key (the controller's certificate)")
    if not args.insecure:
        raise ValueError("--listen needs --tls-cert/--tls-key (the controller's certificate, see `hwnas certs "
                         "init`), or --insecure for plaintext on a loopback address")
    check_plaintext(host_of(args.listen), f"serve --listen {args.listen} (--insecure)")
    return None


def add_space_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolution", type=int, default=None, help="input resolution (OFA spaces; default 224)")
    parser.add_argument("--classes", type=int, default=None, help="classifier outputs (NB-201: 10 or 100)")
    parser.add_argument("--sequence", type=int, default=None,
                        help="tokens per input (transformer: default 128; hat: source and target, default 30)")
