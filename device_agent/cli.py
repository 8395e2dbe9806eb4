"""``hwnas-agent``: start a device agent on a lab machine."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from hwnas.device_agent import __version__
from hwnas.device_agent.backends import TOOL_BACKENDS
from hwnas.protos import names
from hwnas.protos.argtypes import arg_type
from hwnas.protos.auth import ClientTls, TlsFiles, check_plaintext, host_of, read_token
from hwnas.protos.listen import address_arg, port_arg

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "KIB": 1024, "M": 1e6, "MB": 1e6, "MIB": 1 << 20,
          "G": 1e9, "GB": 1e9, "GIB": 1 << 30, "T": 1e12, "TB": 1e12, "TIB": 1 << 40}

SIGNAL_CHECK_S = 0.25  # how soon the main thread notices a signal another thread received


def parse_size(text: str) -> int:
    """'2GiB', '500MB', '1048576' -> bytes."""
    match = _SIZE.fullmatch(text)
    unit = (match.group(2) or "").upper() if match else None
    if not match or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 2GiB, 500MB, 1048576)")
    return int(float(match.group(1)) * _UNITS[unit])


def env_path(name: str) -> Path | None:
    """A path from the environment, so containers and systemd units can configure the agent."""
    value = os.environ.get(name)
    return Path(value) if value else None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwnas-agent" / "models"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwnas-agent", description="hwnas device agent: measures models over gRPC."
    )
    parser.add_argument("--version", action="version", version=f"hwnas-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="measure models: serve the DeviceAgent gRPC service and/or dial out to a controller",
        description="Serve the DeviceAgent gRPC service for a controller to call, or, with --controller, dial "
                    "out to the controller (for agents behind NAT or firewalls), or both.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (0.0.0.0 for all; default %(default)s)")
    serve.add_argument("--port", type=port_arg, default=None,
                       help="TCP port, 0 picks a free one (default 50151; with --controller: no listening port "
                            "unless given)")
    serve.add_argument("--backend", action="append", dest="backends", metavar="NAME",
                       help="runtime backend to enable: onnxruntime, onnxruntime-cuda, openvino, litert, edgetpu, "
                            "torch, simulator, replay, instant; or a vendor benchmark tool: benchmark-model (LiteRT's "
                            "benchmark_model or litert-benchmark), trtexec, benchmark-app (OpenVINO), "
                            "tool:FILE.toml (a lab's own tool); repeat for several (default: onnxruntime)")
    tools = serve.add_argument_group(
        "tool backends", "vendor benchmark tools, run on this host or on a device (docs/devices.md)")
    tools.add_argument("--via", default="local", metavar="WHERE",
                       help="where tool backends run: local (default), adb[:SERIAL] (an Android device), or "
                            "ssh://USER@HOST[:PORT] (a board; key authentication, host key from known_hosts)")
    tools.add_argument("--tool", action="append", default=[], metavar="[BACKEND=]PATH",
                       help="the tool's path on the device (default: its usual name looked up there, e.g. "
                            "benchmark_model); BACKEND=PATH when several tool backends are enabled")
    tools.add_argument("--tool-option", action="append", default=[], metavar="[BACKEND:]KEY=VALUE",
                       help="a tool setting, e.g. delegate=gpu (benchmark-model: cpu, xnnpack, gpu, nnapi, hexagon), "
                            "precision=fp16 (trtexec: fp32, fp16, int8, best), device=GPU (benchmark-app); "
                            "hwnas-agent info lists each tool's options")
    tools.add_argument("--ssh-key", default="", metavar="FILE", help="private key for --via ssh://...")
    tools.add_argument("--ssh-known-hosts", default="", metavar="FILE",
                       help="known_hosts holding the board's host key (default ~/.ssh/known_hosts)")
    tools.add_argument("--remote-dir", default="", metavar="DIR",
                       help="where scratch folders go on an SSH board (default /tmp)")
    tools.add_argument("--adb", default="", metavar="PATH", help="the adb client (default: adb on PATH, or $HWNAS_ADB)")
    tools.add_argument("--cpu-mask", default="", metavar="HEX",
                       help="taskset mask on an Android device (default: its fastest cores), e.g. f0")
    replay = serve.add_argument_group("replay backend", "--backend replay answers latency from a recorded table")
    replay.add_argument("--table", type=Path, default=None,
                        help="CSV (or .csv.gz) with an arch_str or arch column, e.g. the NB-201 latency table")
    replay.add_argument("--column", default=None, help="the table's column to answer, e.g. lat_ms_pixel3")
    replay.add_argument("--key-column", default="", help="column naming each architecture (default: arch_str, "
                                                         "else arch)")
    torch_group = serve.add_argument_group("torch backend", "--backend torch rebuilds each ONNX model in PyTorch")
    torch_group.add_argument("--torch-device", default=None, metavar="DEVICE", help="cpu (default), cuda or cuda:N")
    torch_group.add_argument("--torch-compile", action="store_true", help="run the model under torch.compile")
    ov = serve.add_argument_group("openvino backend", "--backend openvino compiles each ONNX model with OpenVINO")
    ov.add_argument("--ov-device", default=None, metavar="DEVICE",
                    help="CPU (default), GPU, NPU or GPU.1: one OpenVINO reports on this host (hwnas-agent info)")
    ov.add_argument("--ov-hint", default=None, choices=["latency", "throughput"],
                    help="performance hint (default latency: one inference at a time, as the protocols time it)")
    ov.add_argument("--ov-streams", type=int, default=None, metavar="N", help="inference streams (default 1)")
    ov.add_argument("--ov-precision", default=None, choices=["f32", "bf16", "f16"],
                    help="inference precision (default: the device's own, e.g. bf16 on CPUs with AMX or "
                         "AVX512-BF16; every record says which)")
    sim = serve.add_argument_group("simulator backend", "--backend simulator: ZigZag estimates cycles and energy")
    sim.add_argument("--sim-accelerator", default=None, metavar="NAME|FILE.yaml",
                     help="a ZigZag hardware YAML or a shipped one: tpu_like (default), edge_tpu_like, "
                          "eyeriss_like, ...")
    sim.add_argument("--sim-mapping", default=None, metavar="FILE.yaml",
                     help="ZigZag mapping YAML (default: the shipped one of the accelerator's name, else default)")
    sim.add_argument("--sim-clock-mhz", type=float, default=None, help="clock turning cycles into ms (default 1000)")
    sim.add_argument("--sim-effort", type=int, default=None,
                     help="ZigZag's lpf_limit: temporal mappings tried per layer (default 6; lower is faster)")
    power = serve.add_argument_group("power", "energy over each timed window (hwnas-agent info lists the sources)")
    power.add_argument("--power-source", default="", metavar="NAME[:ARG]",
                       help="rapl, nvml, ina2xx[:HWMON] (an INA219/226/260 under Linux's hwmon), zeus, or "
                            "serial:PORT (an RDTech UM24C/UM25C/UM34C USB meter); default: the first available "
                            "of rapl, nvml and ina2xx. zeus (NVML, RAPL and Jetson rails through the Zeus library) "
                            "and serial only when named; the agent refuses to start if the named one is "
                            "unavailable")
    power.add_argument("--idle-baseline-seconds", type=float, default=0.0, metavar="S",
                       help="measure idle power for S seconds at start and report power and energy net of it")
    serve.add_argument("--name", default=None, type=arg_type(names.agent_name),
                       help="agent name reported to the controller (default: hostname)")
    serve.add_argument("--cache-dir", type=Path, default=None,
                       help="model cache folder (default: $XDG_CACHE_HOME/hwnas-agent/models)")
    serve.add_argument("--cache-size", type=parse_size, default=parse_size("2GiB"),
                       help="cap on cached model bytes, LRU-evicted (default 2GiB)")
    serve.add_argument("--drain-seconds", type=float, default=0.0,
                       help="on SIGTERM, let a running measurement finish for this long before aborting it")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    dial = serve.add_argument_group("dial out", "register with a controller and pull jobs from it")
    dial.add_argument("--controller", metavar="HOST:PORT", default=os.environ.get("HWNAS_CONTROLLER"),
                      type=address_arg,
                      help="controller to register with (hwnas latbench build --listen ...)")
    dial.add_argument("--device-key", metavar="KEY", default=os.environ.get("HWNAS_DEVICE_KEY"),
                      type=arg_type(names.device_key),
                      help="the queue this agent serves, e.g. rpi4-cpu-ort (required with --controller)")
    dial.add_argument("--controller-ca", type=Path, default=env_path("HWNAS_CONTROLLER_CA"),
                      help="CA that signed the controller's certificate; --tls-cert/--tls-key, if given, are "
                           "presented to it as a client certificate (mutual TLS)")
    dial.add_argument("--controller-server-name", default=None,
                      help="name to expect in the controller's certificate (default: its host)")
    security = serve.add_argument_group(
        "security", "TLS is required unless --insecure is given on a loopback address; each flag also reads "
                    "its HWNAS_* environment variable (e.g. HWNAS_TLS_CERT)")
    security.add_argument("--tls-cert", type=Path, default=env_path("HWNAS_TLS_CERT"), help="server certificate (PEM)")
    security.add_argument("--tls-key", type=Path, default=env_path("HWNAS_TLS_KEY"), help="its private key (PEM)")
    security.add_argument("--tls-client-ca", type=Path, default=env_path("HWNAS_TLS_CLIENT_CA"),
                          help="require client certificates signed by this CA (mutual TLS)")
    security.add_argument("--token-file", type=Path, default=env_path("HWNAS_TOKEN_FILE"),
                          help="require this bearer token on every call (health checks excepted)")
    security.add_argument("--insecure", action="store_true", help="plaintext; allowed on loopback addresses only")

    info = sub.add_parser("info", help="print what this host offers (backends, power sources) as JSON and exit")
    info.add_argument("--power-source", default="", metavar="NAME[:ARG]",
                      help="also probe this opt-in power source (zeus, serial:PORT), or a named ina2xx:HWMON")
    return parser


def security_from_args(args: argparse.Namespace) -> tuple[TlsFiles | None, str | None]:
    """TLS files and token from the flags, or a ValueError saying what is missing or not allowed."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key, args.tls_client_ca, args.token_file,
                 getattr(args, "controller_ca", None)):
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
    token = read_token(args.token_file)
    if args.port is None:  # dial-out only: nothing to serve
        return None, token
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    if tls is None and args.tls_client_ca:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    if tls is None and not args.insecure:
        raise ValueError("no TLS configured: pass --tls-cert/--tls-key (see `hwnas certs init`), "
                         "or --insecure to serve plaintext on a loopback address")
    if tls is None:
        check_plaintext(args.host, f"serve on {args.host} (--insecure)")
    return tls, token


def controller_tls(args: argparse.Namespace) -> ClientTls | None:
    """How to reach the controller: TLS with --controller-ca, or plaintext to a loopback one with --insecure."""
    if not args.device_key:
        raise ValueError("--controller needs --device-key KEY (the queue this agent serves, e.g. rpi4-cpu-ort)")
    if ":" not in args.controller:
        raise ValueError(f"--controller must look like HOST:PORT, got {args.controller!r}")
    if args.controller_ca:
        return ClientTls(args.controller_ca, args.tls_cert, args.tls_key, args.controller_server_name)
    if not args.insecure:
        raise ValueError("no TLS to the controller: pass --controller-ca (see `hwnas certs init`), or --insecure "
                         "for plaintext to a loopback controller")
    check_plaintext(host_of(args.controller), f"dial the controller at {args.controller} (--insecure)")
    return None


def backend_options(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Each enabled backend's options from its flags; a flag given without its backend is refused."""
    enabled = args.backends or []
    options: dict[str, dict[str, str]] = {}
    if args.table is not None or args.column is not None or "replay" in enabled:
        if "replay" not in enabled:
            raise ValueError("--table/--column configure the replay backend; add --backend replay")
        options["replay"] = {"table": str(args.table or ""), "column": args.column or "",
                             "key_column": args.key_column}
    if args.torch_device is not None or args.torch_compile or "torch" in enabled:
        if "torch" not in enabled:
            raise ValueError("--torch-device/--torch-compile configure the torch backend; add --backend torch")
        options["torch"] = {"device": args.torch_device or "cpu", "compile": str(args.torch_compile)}
    ov = {"device": args.ov_device, "hint": args.ov_hint, "streams": args.ov_streams, "precision": args.ov_precision}
    if any(v is not None for v in ov.values()) or "openvino" in enabled:
        if "openvino" not in enabled:
            raise ValueError("--ov-* flags configure the openvino backend; add --backend openvino")
        options["openvino"] = {k: str(v) for k, v in ov.items() if v is not None}
    sim = {"accelerator": args.sim_accelerator, "mapping": args.sim_mapping, "clock_mhz": args.sim_clock_mhz,
           "effort": args.sim_effort}
    if any(v is not None for v in sim.values()) or "simulator" in enabled:
        if "simulator" not in enabled:
            raise ValueError("--sim-* flags configure the simulator backend; add --backend simulator")
        options["simulator"] = {k: str(v) for k, v in sim.items() if v is not None}
    options.update(tool_options(args, enabled))
    return options


def tool_options(args: argparse.Namespace, enabled: list[str]) -> dict[str, dict[str, str]]:
    """Each enabled tool backend's --tool path and --tool-option settings."""
    tools = [name for name in enabled if name.partition(":")[0] in TOOL_BACKENDS]

    def target(text: str, flag: str, separator: str) -> tuple[str, str]:
        head, sep, rest = text.partition(separator)
        if sep and (head in tools or f"tool:{head}" in tools):
            return (head if head in tools else f"tool:{head}"), rest
        if len(tools) != 1:
            raise ValueError(f"{flag} {text}: name the backend ({'BACKEND' + separator + '...'}) "
                             f"when {'several' if tools else 'no'} tool backends are enabled")
        return tools[0], text

    options: dict[str, dict[str, str]] = {name: {} for name in tools}
    for text in args.tool:
        name, path = target(text, "--tool", "=")
        options[name]["tool"] = path
    for text in args.tool_option:
        name, setting = target(text, "--tool-option", ":")
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"--tool-option must look like KEY=VALUE, got {text!r}")
        options[name][key] = value
    return {name: opts for name, opts in options.items() if opts}


def transport_options(args: argparse.Namespace) -> dict[str, str]:
    return {"key_file": args.ssh_key, "known_hosts": args.ssh_known_hosts, "remote_dir": args.remote_dir,
            "adb": args.adb, "cpu_mask": args.cpu_mask}


def _serve(args: argparse.Namespace) -> int:
    from hwnas.device_agent.server import AgentConfig, AgentServer, AgentServicer  # grpc only when serving

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("hwnas.agent")
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID`: every thread's stack on stderr, for an agent that hangs
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    from hwnas.device_agent.host import hostname

    if args.port is None and not args.controller:
        args.port = 50151
    try:
        config = AgentConfig(
            name=args.name or hostname(),
            cache_dir=args.cache_dir or default_cache_dir(),
            cache_capacity_bytes=args.cache_size,
            backends=args.backends or ["onnxruntime"],
            backend_options=backend_options(args),
            power_source=args.power_source,
            idle_baseline_s=args.idle_baseline_seconds,
            via=args.via,
            transport_options={k: v for k, v in transport_options(args).items() if v},
        )
        tls, token = security_from_args(args)
        link_tls = controller_tls(args) if args.controller else None
        server = AgentServer(config, args.host, args.port, tls=tls, token=token) if args.port is not None else None
        servicer = server.servicer if server else AgentServicer(config)
        link = None
        if args.controller:
            from hwnas.device_agent.dialout import ControllerLink

            link = ControllerLink(servicer, args.controller, args.device_key, link_tls, token)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"hwnas-agent: {exc}", file=sys.stderr)
        return 2
    summary = f"as {config.name!r} (backends: {', '.join(config.backends)}; cache: {config.cache_dir})"
    stop = threading.Event()
    received: list[str] = []
    failure: list[str] = []

    def on_signal(signum, _frame) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    def dial_out() -> None:
        import grpc

        try:
            link.run()
        except grpc.RpcError as exc:  # a refusal retrying cannot fix: a wrong token or device key
            failure.append(f"{exc.code().name}: {exc.details()}")
        stop.set()

    # before the agent says it is ready: a SIGTERM right after "listening" drains like any other
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if server is not None:
        server.start()
        mode = ("mutual TLS" if tls and tls.client_ca else "TLS" if tls else "plaintext (loopback)") + \
            (" + token" if token else "")
        print(f"hwnas-agent {__version__} listening on {server.address} {summary}; {mode}", flush=True)
    dialer = None
    if link is not None:
        mode = ("mutual TLS" if link_tls and link_tls.cert else "TLS" if link_tls else "plaintext (loopback)") + \
            (" + token" if token else "")
        print(f"hwnas-agent {__version__} dialling out to {args.controller} for {args.device_key} {summary}; "
              f"{mode}", flush=True)
        dialer = threading.Thread(target=dial_out, name="hwnas-dialout", daemon=True)
        dialer.start()
    # In slices: a signal the kernel hands to another thread runs its handler only when the main thread next
    # runs Python code, and an untimed wait never would (SIGTERM given to a gRPC thread was lost).
    while not stop.wait(SIGNAL_CHECK_S):
        pass
    if failure:
        print(f"hwnas-agent: the controller refused this agent: {failure[0]}", file=sys.stderr)
    log.info("%s: shutting down (drain %.1f s)", received[0] if received else "link closed", args.drain_seconds)
    if link is not None:
        link.stop()
    outcome = server.stop(args.drain_seconds) if server else servicer.shut_down(args.drain_seconds)
    if dialer is not None:
        dialer.join(30)  # lets an aborted or finished job be reported
    log.info("agent stopped: %s", outcome)
    print(f"hwnas-agent stopped: {outcome}", flush=True)
    code = 2 if failure else 0
    if servicer.busy:  # a runtime that ignores aborts holds a worker thread that interpreter exit would wait for
        sys.stderr.flush()
        os._exit(code)
    return code


def _info(args: argparse.Namespace) -> int:
    from hwnas.device_agent.backends import BACKENDS, probe_backend
    from hwnas.device_agent.power import probe_all

    try:
        power = probe_all(args.power_source)
    except ValueError as exc:
        print(f"hwnas-agent info: --power-source: {exc}", file=sys.stderr)
        return 2
    from hwnas.device_agent.tools.survey import survey_tools, survey_transports

    report = {
        "agent_version": __version__,
        "backends": {name: vars(probe_backend(name)) for name in BACKENDS if name not in TOOL_BACKENDS},
        "tool_backends": survey_tools(),
        "transports": survey_transports(),
        "power_sources": {name: vars(avail) for name, (_, avail) in power.items()},
    }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _info(args)


if __name__ == "__main__":
    sys.exit(main())
