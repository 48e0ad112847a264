"""A plain-socket AMI client and small configurations for the simulator tests."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

from pbx.simulator import (
    QUIET,
    Behaviour,
    CallCentre,
    CentreConfig,
    CompanyConfig,
    DeviceConfig,
    History,
    MemberConfig,
    QueueConfig,
    SimulatedPbx,
)

USERNAME, SECRET = "tester", "s3cret"
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class Frame:
    """Headers of one received frame, in order; lookups ignore key case."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs
        self._first: dict[str, str] = {}
        for name, value in pairs:
            self._first.setdefault(name.lower(), value)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._first.get(key.lower(), default)

    def names(self) -> list[str]:
        return [name for name, _ in self.pairs]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    def __repr__(self) -> str:
        return f"Frame({self.pairs!r})"


def parse_frames(text: str, *, split_glued: bool = False) -> list[Frame]:
    """Frames of AMI text (CRLF or LF), splitting each line on its first colon.

    `split_glued` is for recordings that lost the blank line between two frames (goami2's
    fixtures are concatenated Go strings): a second `Event:`, or a `Response:` after a list's
    last event, then starts a new frame.
    """
    frames, pairs = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if pairs:
                frames.append(Frame(pairs))
            pairs = []
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if split_glued and pairs and _starts_frame(key.strip().lower(), Frame(pairs)):
            frames.append(Frame(pairs))
            pairs = []
        pairs.append((key.strip(), value[1:] if value.startswith(" ") else value))
    if pairs:
        frames.append(Frame(pairs))
    return frames


def _starts_frame(key: str, current: Frame) -> bool:
    if key in ("event", "action"):
        return True
    # OriginateResponse is the one event with a Response header of its own.
    return key == "response" and current.event not in (None, "OriginateResponse")


class AmiClient:
    """Reads on a background thread so that bursts of events never block the server."""

    _ids = itertools.count(1)

    def __init__(self, port: int, timeout: float = 3.0):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(None)  # the reader blocks; close() ends it
        self.raw = b""
        self.frames: list[Frame] = []
        self.by_action_id: dict[str, list[Frame]] = {}
        self.closed = False
        self._cond = threading.Condition()
        self._buffer = b""
        self._banner_seen = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.banner = self._wait(lambda: self._banner_seen and self.raw.split(b"\r\n")[0])

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self.closed = True
                    self._cond.notify_all()
                    return
                if self._banner_seen:
                    self._buffer += data
                else:
                    self.raw += data
                    if b"\r\n" in self.raw:
                        self._banner_seen = True
                        self._buffer = self.raw.split(b"\r\n", 1)[1]
                *blocks, self._buffer = self._buffer.split(b"\r\n\r\n")
                for block in blocks:
                    for frame in parse_frames(block.decode("utf-8")):
                        self.frames.append(frame)
                        action_id = frame.get("ActionID")
                        if action_id is not None:
                            self.by_action_id.setdefault(action_id, []).append(frame)
                self._cond.notify_all()

    def _wait(self, predicate, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                result = predicate()
                if result or self.closed:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no matching frame from the simulator")
                self._cond.wait(remaining)

    def send(self, *pairs: tuple[str, str]) -> None:
        self.sock.sendall(("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode())

    def action(self, name: str, *pairs: tuple[str, str], action_id: str | None = None) -> Frame:
        """Sends an action and returns the response frame carrying its ActionID."""
        action_id = action_id or f"t-{next(self._ids)}"
        self.send(("Action", name), ("ActionID", action_id), *pairs)
        return self.response(action_id)

    def response(self, action_id: str) -> Frame:
        return self._wait(
            lambda: next(
                (f for f in self.by_action_id.get(action_id, ()) if f.get("Response")), None
            )
        )

    def listing(self, name: str, *pairs: tuple[str, str]) -> tuple[Frame, list[Frame], Frame]:
        """A list action's response, its items and its Complete event."""
        action_id = f"list-{next(self._ids)}"
        response = self.action(name, *pairs, action_id=action_id)
        mine = lambda: [f for f in self.by_action_id.get(action_id, ()) if f.event]  # noqa: E731
        self._wait(lambda: any(f.get("EventList") == "Complete" for f in mine()))
        frames = mine()
        return response, frames[:-1], frames[-1]

    def login(self, username: str = USERNAME, secret: str = SECRET, **extra: str) -> Frame:
        return self.action("Login", ("Username", username), ("Secret", secret), *extra.items())

    def events(self, name: str) -> list[Frame]:
        with self._cond:
            return [f for f in self.frames if f.event == name and not f.get("ActionID")]

    def wait_event(self, name: str, timeout: float | None = None, **match: str) -> Frame:
        def found() -> Frame | None:
            for frame in self.frames:
                if frame.event == name and all(frame.get(k) == v for k, v in match.items()):
                    return frame
            return None

        return self._wait(found, timeout)

    def wait_count(self, name: str, count: int) -> list[Frame]:
        """Waits until `count` unsolicited `name` events have arrived."""
        return self._wait(lambda: len(found := self.events(name)) >= count and found)

    def wait_closed(self) -> bool:
        return self._wait(lambda: self.closed)

    def close(self) -> None:
        self.sock.close()


def small_config() -> CentreConfig:
    """One company, three phones; `ventas` has 200 and 201, `soporte` has 201 and 202."""
    devices = tuple(
        DeviceConfig(f"PJSIP/{ext}", str(ext), name, "acme")
        for ext, name in ((200, "Ana García"), (201, "Luis Pérez"), (202, "Marta Ruiz"))
    )
    return CentreConfig(
        companies=(CompanyConfig("acme", "ACME", "Europe/Madrid", "from-internal"),),
        devices=devices,
        queues=(
            QueueConfig(
                "ventas",
                "acme",
                (MemberConfig("PJSIP/200", "Ana García"), MemberConfig("PJSIP/201", "Luis Pérez")),
                exten="900100100",
            ),
            QueueConfig(
                "soporte",
                "acme",
                (MemberConfig("PJSIP/201", "Luis Pérez"), MemberConfig("PJSIP/202", "Marta Ruiz")),
            ),
        ),
    )


def make_centre(
    tmp: Path | None = None, *, behaviour: Behaviour = QUIET, seed: int = 7
) -> CallCentre:
    history = History(tmp / "queue_log", tmp / "Master.csv") if tmp else None
    return CallCentre(
        small_config(),
        behaviour=behaviour,
        seed=seed,
        start_time=START,
        history=history,
        cdr_time_zone="Europe/Madrid",
    )


def make_pbx(centre: CallCentre) -> SimulatedPbx:
    return SimulatedPbx(centre, port=0, username=USERNAME, secret=SECRET, speed=0)
