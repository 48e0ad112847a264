"""The TCP AMI server: one thread accepts, one serves each connection, one drives the clock."""

from __future__ import annotations

import contextlib
import hmac
import logging
import select
import socket
import threading
import time
from collections.abc import Callable

from pbx.simulator import ami_actions
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET, CentreConfig
from pbx.simulator.protocol import BANNER, AmiMessage, FrameDecoder

logger = logging.getLogger("swan.simulator")

POLL_SECONDS = 0.1
SEND_TIMEOUT = 5.0  # a client that reads nothing for this long is dropped


class _Connection:
    def __init__(self, sock: socket.socket, peer: str):
        self.sock = sock
        self.state = ami_actions.SessionState(peer=peer)
        self.closed = False
        self._send_lock = threading.Lock()

    def send(self, frames: list[AmiMessage]) -> None:
        if not frames or self.closed:
            return
        data = b"".join(frame.encode() for frame in frames)
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SimulatedPbx:
    """A fake Asterisk: AMI on TCP in front of a call-centre model.

    `speed` multiplies simulated time against wall-clock time; 0 stops the clock so tests drive
    the model with `step()`.
    """

    def __init__(
        self,
        centre: CallCentre | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "swan",
        secret: str = "swan-simulator",
        speed: float = 1.0,
        tick: float = 0.05,
    ):
        self.centre = centre or CallCentre(CentreConfig(), behaviour=QUIET)
        self.host = host
        self._requested_port = port
        self._port = port
        self.username = username
        self.secret = secret
        self.speed = speed
        self.tick = tick
        self.lock = threading.RLock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: list[_Connection] = []
        self._started_at = time.monotonic()

    @property
    def port(self) -> int:
        """The bound port (the real one after `start()` when 0 was asked for)."""
        return self._port

    def __enter__(self) -> SimulatedPbx:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        listener = socket.create_server((self.host, self._requested_port), reuse_port=False)
        listener.settimeout(POLL_SECONDS)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._started_at = time.monotonic()
        self._spawn(self._accept_loop, "ami-accept")
        if self.speed > 0:
            self._spawn(self._clock_loop, "ami-clock")
        logger.info("simulator.listen host=%s port=%d speed=%s", self.host, self.port, self.speed)

    def stop(self, timeout: float = 1.0) -> None:
        """Closes the port and every connection; returns within about `timeout` seconds."""
        self._stopping.set()
        if self._listener is not None:
            # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        # Not under the lock: a send blocked on a slow client holds it, and closing unblocks it.
        for conn in list(self._connections):
            conn.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))
        self.centre.history.close()
        logger.info("simulator.stop port=%d", self.port)

    def step(self, seconds: float = 0.0) -> None:
        """Advances the model and sends what happened to the connected clients."""
        with self.lock:
            self.centre.step(seconds)
            self._flush()

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _flush(self) -> None:
        batch = self.centre.drain_events()
        if not batch:
            return
        for conn in list(self._connections):
            conn.send([event for event in batch if conn.state.wants(event)])

    def _clock_loop(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(self.tick):
            now = time.monotonic()
            self.step((now - last) * self.speed)
            last = now

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            peer = f"{address[0]}:{address[1]}"
            sock.settimeout(SEND_TIMEOUT)
            conn = _Connection(sock, peer)
            with self.lock:
                self._connections.append(conn)
            logger.info("simulator.connect peer=%s", peer)
            self._spawn(self._serve, f"ami-{peer}", conn)

    def _serve(self, conn: _Connection) -> None:
        decoder = FrameDecoder()
        try:
            conn.sock.sendall(f"{BANNER}\r\n".encode())
            while not self._stopping.is_set() and not conn.closed:
                readable, _, _ = select.select([conn.sock], [], [], POLL_SECONDS)
                if not readable:
                    continue
                data = conn.sock.recv(65536)
                if not data:
                    break
                for frame in decoder.feed(data):
                    self._handle(conn, frame)
                    if conn.closed:
                        break
        except (OSError, ValueError):
            pass  # the peer went away, or stop() closed the socket under us
        finally:
            conn.close()
            with self.lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            logger.info("simulator.disconnect peer=%s", conn.state.peer)

    def _check_login(self, username: str, secret: str) -> bool:
        return hmac.compare_digest(username.encode(), self.username.encode()) and (
            hmac.compare_digest(secret.encode(), self.secret.encode())
        )

    def _uptime(self) -> int:
        return int(time.monotonic() - self._started_at)

    def _handle(self, conn: _Connection, frame: AmiMessage) -> None:
        context = ami_actions.Context(self.centre, conn.state, self._check_login, self._uptime)
        with self.lock:
            reply = ami_actions.handle(context, frame)
            conn.send(reply.frames)
            self._flush()
        self._log(conn, frame, reply.frames[0] if reply.frames else None)
        if reply.close:
            conn.close()

    def _log(self, conn: _Connection, frame: AmiMessage, answer: AmiMessage | None) -> None:
        action = frame.get("Action") or ""
        result = answer.get("Response") if answer is not None else ""
        if action.lower() == "login":
            logger.info(
                "simulator.login peer=%s user=%s result=%s",
                conn.state.peer,
                frame.get("Username") or "",
                "ok" if result == "Success" else "refused",
            )
            return
        logger.info(
            "simulator.action peer=%s action=%s actionid=%s response=%s message=%r",
            conn.state.peer,
            action,
            frame.get("ActionID") or "",
            result,
            (answer.get("Message") if answer is not None else "") or "",
        )
