"""The real Asterisk of ../shared/asterisk for the tests: unpacking, config, start/stop, phones.

Nothing here knows SWAN: it runs a PBX and its SIP phones and always cleans up after itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import wait_until

SHARED_ASTERISK = Path(
    os.environ.get("SWAN_ASTERISK_DIR", Path(__file__).resolve().parents[3] / "shared" / "asterisk")
)
CACHE = Path(
    os.environ.get("SWAN_ASTERISK_CACHE", Path(tempfile.gettempdir()) / "swan-asterisk-cache")
)
TARBALL = re.compile(r"^swan-asterisk-(?P<version>\d+(?:\.\d+)+)-.*\.tar\.xz$")
AMI_USERNAME, AMI_SECRET = "swan", "swan-secret"  # SWAN's AMI user (layouts.py writes it)
PASSWORD_PREFIX = "pw"  # callcentre/pjsip.conf: extension 201 has password pw201
EXTENSIONS = ("201", "202", "203", "204", "205")
ANSWER_AFTER_MS = 300  # the phones' default answer delay in these tests


def tarballs() -> dict[str, Path]:
    """Version → tarball for every package present, filtered by SWAN_ASTERISK_VERSIONS."""
    if not SHARED_ASTERISK.is_dir():
        return {}
    found = {}
    for path in sorted(SHARED_ASTERISK.iterdir()):
        match = TARBALL.match(path.name)
        if match:
            found[match["version"]] = path
    wanted = os.environ.get("SWAN_ASTERISK_VERSIONS", "").replace(",", " ").split()
    if wanted:
        found = {version: path for version, path in found.items() if version in wanted}
    return dict(sorted(found.items(), key=lambda item: [-int(n) for n in item[0].split(".")]))


def unpacked(tarball: Path) -> Path:
    """The package folder of `tarball`, unpacked once per checksum (safe when runs race)."""
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:16]
    final = CACHE / digest
    package = final / "swan-asterisk"
    if (final / ".complete").exists():
        return package
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=CACHE))
    try:
        subprocess.run(["tar", "xJf", str(tarball), "-C", str(work)], check=True)
        (work / ".complete").write_text(tarball.name)
        try:
            os.rename(work, final)  # atomic: another run either sees nothing or all of it
        except OSError:
            if not (final / ".complete").exists():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return package


def free_tcp_udp_port() -> int:
    """A port free for TCP (AMI) whose successor is free for UDP (SIP), below the ephemeral
    range: a PBX restarted by a test gets its port back (no outgoing connection took it)
    and above the RTP ports (rtp.conf: 10000-20000)."""
    low = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(20100, min(low, 32768) - 2, 2)
        try:
            with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for AMI and SIP")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie, exited but not reaped, does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


class AsteriskFailed(Exception):
    """start.sh failed; the message carries the tail of Asterisk's console log."""


@dataclass
class Asterisk:
    """One Asterisk in its own short RUNDIR (the control socket path must stay ≤ 100 chars)."""

    package: Path
    overrides: Path
    rundir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swa-", dir="/tmp")))
    ami_port: int = field(default_factory=free_tcp_udp_port)

    @property
    def sip_port(self) -> int:
        return self.ami_port + 1

    @property
    def version(self) -> str:
        return (self.package / "VERSION").read_text().strip()

    @property
    def log_dir(self) -> Path:
        return self.rundir / "var" / "log" / "asterisk"

    def console_tail(self, lines: int = 40) -> str:
        path = self.log_dir / "console.log"
        text = path.read_text(errors="replace") if path.exists() else "(no console.log)"
        return "\n".join(text.splitlines()[-lines:])

    def pid(self) -> int | None:
        try:
            return int((self.rundir / "asterisk.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self) -> None:
        env = {**os.environ, "SWAN_ASTERISK_CONF_OVERRIDES": str(self.overrides)}
        result = subprocess.run(
            [
                str(self.package / "start.sh"),
                str(self.rundir),
                str(self.ami_port),
                str(self.sip_port),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AsteriskFailed(
                f"Asterisk {self.version} did not start (start.sh rc={result.returncode}) in "
                f"{self.rundir}\n{result.stderr.strip()}\n--- console.log tail ---\n"
                f"{self.console_tail()}"
            )

    def stop(self) -> None:
        """stop.sh, then SIGKILL by pid file as a last resort."""
        pid = self.pid()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [str(self.package / "stop.sh"), str(self.rundir)], capture_output=True, timeout=30
            )
        # stop.sh can return while the process still finishes its last cleanups (seen on a
        # loaded machine: AMI still accepting a login after "Asterisk cleanly ending"): wait
        # for the pid itself to go, then kill it
        if pid and not wait_until(lambda: not pid_alive(pid), 10):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5)
        wait_until(lambda: not self.ami_accepts(), 10)

    def ami_accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ami_port), timeout=0.5):
                return True
        except OSError:
            return False

    def cli(self, command: str) -> str:
        """A CLI command through the package's cli.sh (the AMI user may not run commands)."""
        result = subprocess.run(
            [str(self.package / "cli.sh"), str(self.rundir), command],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout

    def cpu_seconds(self) -> float:
        """utime + stime of the Asterisk process, in seconds."""
        fields = Path(f"/proc/{self.pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdline_has(pid: int, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


class Phones:
    """The package's pjsua phones (tools/phones.py) for one Asterisk."""

    def __init__(self, asterisk: Asterisk):
        self.asterisk = asterisk
        self.script = asterisk.package / "tools" / "phones.py"

    def _args(self, *args: str) -> list[str]:
        return [sys.executable, str(self.script), args[0], str(self.asterisk.rundir), *args[1:]]

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self._args(*args), capture_output=True, text=True, timeout=timeout)

    def begin(self, command: str, *extensions: str) -> subprocess.Popen:
        """`start` or `stop` (graceful) of these phones, in the background: a test measuring
        how fast SWAN follows must not wait for phones.py to return first."""
        args = [f"--ext={ext}" for ext in extensions]
        if command == "start":
            args += self._start_options()
        return subprocess.Popen(
            self._args(command, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    @staticmethod
    def finish(process: subprocess.Popen) -> None:
        output, _ = process.communicate(timeout=60)
        if process.returncode != 0:
            raise AssertionError(f"{process.args[2:4]} failed: {output}")

    def _start_options(self, answer_after_ms: int = ANSWER_AFTER_MS) -> list[str]:
        return [
            "--sip-port",
            str(self.asterisk.sip_port),
            "--password-prefix",
            PASSWORD_PREFIX,
            "--answer-after-ms",
            str(answer_after_ms),
            "--timeout",
            "30",
            "--log-level",
            "3",
        ]

    def start(self, *extensions: str, answer_after_ms: int = ANSWER_AFTER_MS) -> None:
        args = [f"--ext={ext}" for ext in extensions]
        result = self._run("start", *args, *self._start_options(answer_after_ms))
        if result.returncode != 0:
            raise AssertionError(
                f"phones {extensions} did not register: {result.stdout}{result.stderr}"
            )

    def status(self) -> dict[str, dict]:
        result = self._run("status", "--json")
        return json.loads(result.stdout or "{}")

    def set_answer_after(self, ext: str, milliseconds: int) -> None:
        self._run("set", "--ext", ext, "--answer-after-ms", str(milliseconds))

    def answer(self, ext: str) -> None:
        self._run("answer", "--ext", ext)

    def hangup(self, ext: str) -> None:
        self._run("hangup", "--ext", ext)

    def stop(self, *extensions: str, kill: bool = False) -> None:
        args = [f"--ext={ext}" for ext in extensions]
        self._run("stop", *args, *(["--kill"] if kill else []))

    def wait(self, ext: str, state: str, timeout: float = 15) -> bool:
        return (
            self._run("wait", "--ext", ext, "--state", state, "--timeout", str(timeout)).returncode
            == 0
        )

    def stop_all(self) -> None:
        """Graceful, then SIGKILL, then whatever the pid files still name."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("stop", "--kill", timeout=30)
        registry = self.asterisk.rundir / "phones.json"
        with contextlib.suppress(OSError, ValueError):
            phones = json.loads(registry.read_text()).get("phones", {})
            for info in phones.values():
                for key in ("pjsua_pid", "supervisor_pid"):
                    pid = info.get(key)
                    if pid and pid_alive(pid) and _cmdline_has(pid, str(self.asterisk.rundir)):
                        os.kill(pid, signal.SIGKILL)
        for state in self.asterisk.rundir.glob("phone-*.state"):
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(state.read_text())
                for key in ("pjsua_pid", "supervisor_pid"):
                    pid = info.get(key)
                    if pid and pid_alive(pid) and _cmdline_has(pid, str(self.asterisk.rundir)):
                        os.kill(pid, signal.SIGKILL)
