"""``ssh://USER@HOST[:PORT]``: the tool runs on a board (a Raspberry Pi, a Jetson) over SSH.

The client is paramiko, with one connection kept and reused for every command and copy (SFTP). It
authenticates by key only (``--ssh-key FILE``, else the user's default keys); the board's host key must
already be in known_hosts (``--ssh-known-hosts FILE``, else ~/.ssh/known_hosts) and must match: an unknown
or changed host key is refused, never accepted. A dropped connection is opened again on the next command.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import paramiko

from hwnas.device_agent.transports.base import CommandResult, DeviceFacts, RunningCommand, Transport, TransportError

_TARGET = re.compile(r"ssh://(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]]+\]|[^:/@]+)(?::(?P<port>\d+))?/?")
CONNECT_TIMEOUT_S = 15.0


def parse_target(text: str) -> tuple[str, str, int]:
    """'ssh://USER@HOST[:PORT]' as (user, host, port); ValueError naming the expected form."""
    match = _TARGET.fullmatch(text)
    if not match or not match["user"]:
        raise ValueError(f"--via must look like ssh://USER@HOST[:PORT], got {text!r}")
    port = int(match["port"] or 22)
    if not 0 < port < 65536:
        raise ValueError(f"--via {text}: port must be 1-65535")
    return match["user"], match["host"].strip("[]"), port


class SshCommand(RunningCommand):
    def __init__(self, channel, command: str) -> None:
        self.command = command
        self._channel = channel
        self._t0 = time.perf_counter()
        self._killed = threading.Event()
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True, name="ssh-reader")
        self._reader.start()

    def _read(self) -> None:
        """Drain both streams as they come, so a chatty tool never blocks on a full window."""
        channel = self._channel
        while True:
            got = False
            if channel.recv_ready():
                self._out.append(channel.recv(65536))
                got = True
            if channel.recv_stderr_ready():
                self._err.append(channel.recv_stderr(65536))
                got = True
            if not got:
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    return
                if channel.closed:
                    return
                time.sleep(0.005)

    def kill(self) -> None:
        self._killed.set()
        self._channel.close()

    def wait(self, timeout_s: float | None) -> CommandResult:
        self._reader.join(timeout_s)
        if self._reader.is_alive():
            self.kill()
            self._reader.join(10)
        code = self._channel.recv_exit_status() if self._channel.exit_status_ready() else -1
        if code == -1 and not self._killed.is_set():
            raise TransportError("the SSH connection dropped during the command")
        return CommandResult(self.command, code, b"".join(self._out).decode(errors="replace"),
                             b"".join(self._err).decode(errors="replace"), time.perf_counter() - self._t0,
                             killed=self._killed.is_set())


class SshTransport(Transport):
    kind = "ssh"

    def __init__(self, agent_tag: str, target: str, key_file: str = "", known_hosts: str = "",
                 remote_dir: str = "/tmp") -> None:
        super().__init__(agent_tag)
        self.user, self.host, self.port = parse_target(target)
        self.key_file = key_file
        self.known_hosts = known_hosts or str(Path.home() / ".ssh" / "known_hosts")
        if key_file and not Path(key_file).is_file():
            raise ValueError(f"--ssh-key {key_file}: no such file")
        if not Path(self.known_hosts).is_file():
            raise ValueError(f"no known_hosts file at {self.known_hosts}: add the board's host key first "
                             f"(ssh-keyscan -p {self.port} {self.host} >> ~/.ssh/known_hosts, after checking its "
                             "fingerprint), or pass --ssh-known-hosts FILE")
        self.remote_dir = remote_dir
        self._client = None
        self._client_lock = threading.Lock()
        self.connections_opened = 0  # one connection serves every command until it drops

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"

    def _connected(self):
        """The live connection, opened (again) if there is none; TransportError naming why not."""
        with self._client_lock:
            client = self._client
            if client is not None and client.get_transport() is not None and client.get_transport().is_active():
                return client
            client = paramiko.SSHClient()
            try:
                client.load_host_keys(self.known_hosts)
            except OSError as exc:
                raise TransportError(f"{self.name}: cannot read known_hosts {self.known_hosts}: {exc}") from None
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(self.host, self.port, username=self.user, key_filename=self.key_file or None,
                               look_for_keys=not self.key_file, allow_agent=False, timeout=CONNECT_TIMEOUT_S,
                               banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S)
            except paramiko.BadHostKeyException as exc:
                raise TransportError(
                    f"{self.name}: host key changed: the board presented {exc.key.get_name()} "
                    f"{exc.key.get_fingerprint().hex()}, not the key known_hosts holds. If the board was "
                    f"reinstalled, check and replace its entry (ssh-keygen -R '[{self.host}]:{self.port}')"
                ) from None
            except paramiko.AuthenticationException as exc:
                raise TransportError(f"{self.name}: the board refused the key ({exc})") from None
            except paramiko.SSHException as exc:
                if "not found in known_hosts" in str(exc):
                    raise TransportError(f"{self.name}: unknown host key: {self.host} is not in {self.known_hosts}; "
                                         "add it after checking its fingerprint") from None
                raise TransportError(f"{self.name}: SSH failed: {exc}") from None
            except (TimeoutError, OSError) as exc:
                reason = "connection refused" if isinstance(exc, ConnectionRefusedError) or \
                    "Unable to connect" in str(exc) else str(exc)
                raise TransportError(f"{self.name}: {reason}") from None
            self._client = client
            self.connections_opened += 1
            return client

    def connect(self) -> None:
        self._connected()

    def facts(self) -> DeviceFacts:
        done = self.run("uname -srm; nproc; grep -m1 MemTotal /proc/meminfo; "
                        "grep -m1 -E '^(model name|Model|Hardware)' /proc/cpuinfo; hostname; "
                        "grep -E '^PRETTY_NAME=' /etc/os-release", timeout_s=30)
        lines = done.stdout.splitlines()
        uname = lines[0] if lines else ""
        cores = int(lines[1]) if len(lines) > 1 and lines[1].strip().isdigit() else 0
        memory = re.search(r"(\d+) kB", lines[2]) if len(lines) > 2 else None
        cpu = lines[3].partition(":")[2].strip() if len(lines) > 3 else ""
        pretty = next((ln.partition("=")[2].strip('"') for ln in lines if ln.startswith("PRETTY_NAME=")), "")
        return DeviceFacts(hostname=lines[4].strip() if len(lines) > 4 else self.host, cpu_model=cpu,
                           cores_logical=cores, cores_physical=cores,
                           memory_total_bytes=int(memory.group(1)) * 1024 if memory else 0,
                           os=pretty or uname, machine=uname.split()[-1] if uname else "",
                           properties={"uname": uname, "os_release": pretty})

    def scratch_root(self) -> str:
        return self.remote_dir

    def push(self, local: Path, remote: str) -> None:
        try:
            sftp = self._connected().open_sftp()
            try:
                sftp.put(str(local), remote)
            finally:
                sftp.close()
        except (OSError, EOFError) as exc:
            self.drop()
            raise TransportError(f"{self.name}: copying the model to {remote} failed: {exc}") from None

    def pull(self, remote: str, local: Path) -> bool:
        try:
            sftp = self._connected().open_sftp()
            try:
                sftp.get(remote, str(local))
            finally:
                sftp.close()
        except FileNotFoundError:
            return False
        except (OSError, EOFError) as exc:
            self.drop()
            raise TransportError(f"{self.name}: copying {remote} back failed: {exc}") from None
        return True

    def start(self, command: str) -> SshCommand:
        try:
            channel = self._connected().get_transport().open_session()
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.drop()
            raise TransportError(f"{self.name}: the connection dropped: {exc}") from None
        return SshCommand(channel, command)

    def run(self, command: str, timeout_s: float | None = 60.0) -> CommandResult:
        try:
            return self.start(command).wait(timeout_s)
        except TransportError as exc:
            self.drop()
            raise TransportError(f"{self.name}: {exc}") from None

    def drop(self) -> None:
        """Forget a broken connection: the next command opens a new one."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self.drop()

