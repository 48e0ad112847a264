"""A threaded fake AMI server for tests that answers actions with recorded Asterisk traffic."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

Lines = list[str]  # one frame, as its wire lines without line ends

# Answers for actions a test did not script, worded as in panoramisk_login_ok/_logoff and as
# Asterisk answers an action it does not know.
LOGIN_OK = ["Response: Success", "Message: Authentication accepted"]
GOODBYE = ["Response: Goodbye", "Message: Thanks for all the fish."]
UNKNOWN = ["Response: Error", "Message: Invalid/unknown command"]


def _key(line: str) -> str:
    return line.partition(":")[0].strip().lower()


def _value(line: str) -> str:
    return line.partition(":")[2].strip()


def frame_get(frame: Lines, key: str) -> str | None:
    """The first value of `key` (any case) in a recorded frame."""
    return next((_value(line) for line in frame if _key(line) == key.lower()), None)


def _split_frames(block: Lines) -> list[Lines]:
    """Some captures lost the blank line between frames: a new Event/Response starts a frame."""
    frames: list[Lines] = [[]]
    for line in block:
        current = frames[-1]
        keys = {_key(existing) for existing in current}
        name = frame_get(current, "event") or ""
        starts = _key(line) == "event" and ("event" in keys or "response" in keys)
        # OriginateResponse carries `Response:` inside an event; only a finished list ends here.
        starts |= _key(line) == "response" and ("response" in keys or name.endswith("Complete"))
        if starts:
            frames.append([])
        frames[-1].append(line)
    return [frame for frame in frames if frame]


@dataclass
class Capture:
    """A recording parsed into the client's actions and the server's frames, in order."""

    banner: str | None
    steps: list[tuple[str, Lines]]  # ("client" | "server", frame)

    @classmethod
    def load(cls, path: Path) -> Capture:
        lines = path.read_bytes().decode("utf-8").replace("\r\n", "\n").split("\n")
        banner = None
        if lines and lines[0].startswith("Asterisk Call Manager/"):
            banner = lines.pop(0)
        blocks: list[Lines] = [[]]
        for line in lines:
            if line.strip():
                blocks[-1].append(line)
            elif blocks[-1]:
                blocks.append([])
        steps = []
        for block in blocks:
            for frame in _split_frames(block):
                keys = {_key(line) for line in frame}
                client = "action" in keys and not keys & {"event", "response"}
                steps.append(("client" if client else "server", frame))
        return cls(banner, steps)

    def server_frames(self) -> list[Lines]:
        return [frame for kind, frame in self.steps if kind == "server"]

    def events(self, name: str | None = None) -> list[Lines]:
        return [
            frame
            for frame in self.server_frames()
            if frame_get(frame, "event") and (name is None or frame_get(frame, "event") == name)
        ]

    def exchanges(self) -> list[tuple[Lines, list[Lines]]]:
        """Each client action with the server frames that answer it: those carrying its ActionID
        (clients pipeline actions), and frames without a known ActionID that followed it."""
        result: list[tuple[Lines, list[Lines]]] = []
        by_id: dict[str, list[Lines]] = {}
        for kind, frame in self.steps:
            action_id = frame_get(frame, "actionid")
            if kind == "client":
                result.append((frame, []))
                if action_id:
                    by_id[action_id] = result[-1][1]
            elif action_id in by_id:
                by_id[action_id].append(frame)
            elif result:
                result[-1][1].append(frame)
        return result


@dataclass
class Reply:
    """How to answer one action."""

    frames: list[Lines]
    recorded_id: str | None = None  # ActionID to rewrite; default: the first one in `frames`
    drop_after: int | None = None  # send this many frames and half the next, then hang up
    silent: bool = False  # never answer
    hold: bool = False  # wait for `release()`
    key_case: Callable[[str], str] | None = None  # e.g. str.lower: odd key case on the wire
    hang_up: bool = False  # close the connection after answering

    def render(self, action_id: str | None) -> bytes:
        recorded = self.recorded_id
        if recorded is None:
            recorded = next(
                (frame_get(f, "actionid") for f in self.frames if frame_get(f, "actionid")), None
            )
        frames = []
        for frame in self.frames:
            lines = []
            has_id = False
            for line in frame:
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() == "actionid":
                    has_id = True
                    if value.strip() == recorded and action_id is not None:
                        value = f" {action_id}"
                if sep and self.key_case:
                    key = self.key_case(key)
                lines.append(f"{key}{sep}{value}")
            is_response = frame_get(frame, "response") and not frame_get(frame, "event")
            if not has_id and is_response and action_id is not None:
                # a response always carries the client's ActionID on a real Asterisk
                lines.insert(
                    1, f"{self.key_case('ActionID') if self.key_case else 'ActionID'}: {action_id}"
                )
            frames.append("\r\n".join(lines) + "\r\n\r\n")
        wire = "".join(frames)
        if self.drop_after is not None:
            sent = "".join(frames[: self.drop_after])
            following = frames[self.drop_after] if self.drop_after < len(frames) else ""
            wire = sent + following[: len(following) // 2]
        return wire.encode("utf-8")


@dataclass
class _Held:
    conn: socket.socket
    reply: Reply
    action_id: str | None


@dataclass
class AmiReplayServer:
    """Listens on 127.0.0.1:<ephemeral>; use as a context manager."""

    banner: str | None = "Asterisk Call Manager/5.0.2"
    keep_open_after_logoff: bool = False
    received: list[list[tuple[str, str]]] = field(default_factory=list)
    raw_received: bytearray = field(default_factory=bytearray)
    _replies: dict[str, deque[Reply]] = field(default_factory=dict)
    _held: list[_Held] = field(default_factory=list)
    _conns: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _received_cond: threading.Condition = field(default_factory=threading.Condition)

    def __enter__(self) -> AmiReplayServer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            self._hang_up(conn)

    # -- scripting -------------------------------------------------------------------------

    def expect(self, action: str, frames: Iterable[Lines], **options: object) -> Reply:
        """Answer the next `action` (any case) with `frames`; see `Reply` for the options."""
        reply = Reply(list(frames), **options)  # type: ignore[arg-type]
        with self._lock:
            self._replies.setdefault(action.lower(), deque()).append(reply)
        return reply

    def load(self, capture: Capture, **options: object) -> None:
        """Script every recorded action with what the server recorded after it."""
        if capture.banner:
            self.banner = capture.banner
        for action, frames in capture.exchanges():
            self.expect(
                frame_get(action, "action") or "",
                frames,
                recorded_id=frame_get(action, "actionid"),
                **options,
            )

    def push(self, frames: Iterable[Lines]) -> None:
        """Send unsolicited frames to every connected client."""
        data = Reply(list(frames)).render(None)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sendall(data)

    def release(self, *, reverse: bool = False) -> None:
        """Send the held answers, in arrival order or reversed."""
        with self._lock:
            held, self._held = self._held, []
        for item in reversed(held) if reverse else held:
            self._answer(item.conn, item.reply, item.action_id)

    def drop_all(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            self._hang_up(conn)

    def wait_for(self, count: int, timeout: float = 2.0) -> list[list[tuple[str, str]]]:
        """Block until `count` actions have arrived (in total); returns them."""
        deadline = time.monotonic() + timeout
        with self._received_cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} actions arrived, not {count}")
                self._received_cond.wait(left)
            return list(self.received)

    def actions(self, name: str) -> list[list[tuple[str, str]]]:
        return [
            a
            for a in self.received
            if dict((k.lower(), v) for k, v in a).get("action", "").lower() == name.lower()
        ]

    # -- serving ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            if self.banner is not None:
                conn.sendall(f"{self.banner}\r\n".encode())
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.raw_received.extend(data)
                buffer = (buffer + data).replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    text, buffer = buffer.split(b"\n\n", 1)
                    if text.strip():
                        self._on_action(conn, text.decode("utf-8"))
        self._hang_up(conn)

    def _on_action(self, conn: socket.socket, text: str) -> None:
        pairs = []
        for line in text.split("\n"):
            key, _, value = line.partition(":")
            pairs.append((key, value.removeprefix(" ")))
        fields = {k.lower(): v for k, v in pairs}
        action, action_id = fields.get("action", "").lower(), fields.get("actionid")
        with self._received_cond:
            self.received.append(pairs)
            self._received_cond.notify_all()
        with self._lock:
            queued = self._replies.get(action)
            reply = queued.popleft() if queued else None
        if reply is None:
            default = {"login": LOGIN_OK, "logoff": GOODBYE}.get(action, UNKNOWN)
            reply = Reply([default], hang_up=action == "logoff" and not self.keep_open_after_logoff)
        if reply.hold:
            with self._lock:
                self._held.append(_Held(conn, reply, action_id))
        elif not reply.silent:
            self._answer(conn, reply, action_id)

    def _answer(self, conn: socket.socket, reply: Reply, action_id: str | None) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(reply.render(action_id))
        if reply.drop_after is not None or reply.hang_up:
            self._hang_up(conn)

    def _hang_up(self, conn: socket.socket) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
