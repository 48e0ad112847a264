"""A small raw-socket AMI client for the tests: what Asterisk itself reports, never SWAN's view.

It does not use SWAN's gateway on purpose: the tests judge SWAN by an independent reading of
the PBX. Events are kept with the monotonic time they arrived, so a test can measure how long
SWAN took to follow one.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Frame = dict[str, str]


@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic() when the frame was read
    headers: Frame

    def __getitem__(self, key: str) -> str:
        return self.headers.get(key.lower(), "")


class AmiError(AssertionError):
    """The PBX answered an action with an error, or did not answer in time."""


class RawAmi:
    """One logged-in AMI session; `events` is every unsolicited event, in arrival order."""

    def __init__(self, port: int, username: str, secret: str, *, timeout: float = 10.0):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.events: list[Event] = []
        self._answers: dict[str, tuple[Frame, list[Frame]]] = {}
        self._lists: dict[str, list[Frame]] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self.banner = self._read_banner()
        self._reader = threading.Thread(target=self._read, name="raw-ami", daemon=True)
        self._reader.start()
        self.action("Login", Username=username, Secret=secret)

    def _read_banner(self) -> str:
        data = b""
        while b"\r\n" not in data:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AmiError("AMI closed before its banner")
            data += chunk
        return data.decode().strip()

    def _read(self) -> None:
        buffer = b""
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                raw, buffer = buffer.split(b"\r\n\r\n", 1)
                self._route(raw.decode("utf-8", "replace"), time.monotonic())

    def _route(self, text: str, at: float) -> None:
        frame: Frame = {}
        for line in text.split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                frame.setdefault(key.strip().lower(), value.strip())
        action_id = frame.get("actionid")
        with self._cond:
            if action_id in self._lists:
                if "event" in frame:
                    self._lists[action_id].append(frame)
                    done = frame.get("eventlist", "").lower() == "complete"
                else:
                    self._answers[action_id] = (frame, self._lists[action_id])
                    done = frame.get("response", "").lower() != "success" or (
                        "will follow" not in frame.get("message", "").lower()
                        and frame.get("eventlist", "").lower() != "start"
                    )
                if done and action_id in self._answers:
                    self._lists.pop(action_id)
                    self._cond.notify_all()
                return
            if "event" in frame:
                self.events.append(Event(at, frame))
                self._cond.notify_all()

    def action(self, name: str, *, ok: bool = True, **headers: str) -> tuple[Frame, list[Frame]]:
        """Sends one action and waits for its answer (and, for a list action, its events)."""
        action_id = f"t-{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        with self._cond:
            self._lists[action_id] = []
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while action_id not in self._answers or action_id in self._lists:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError(f"AMI {name}: no complete answer within {self.timeout}s")
                self._cond.wait(left)
            response, events = self._answers.pop(action_id)
        if ok and response.get("response", "").lower() not in ("success", "goodbye"):
            raise AmiError(f"AMI {name} {headers}: {response}")
        return response, events

    # -- what the PBX reports ----------------------------------------------------------------

    def queue_status(self) -> tuple[list[Frame], list[Frame]]:
        """(members, callers) from QueueStatus, as Asterisk words them."""
        _, events = self.action("QueueStatus")
        members = [e for e in events if e.get("event") == "QueueMember"]
        callers = [e for e in events if e.get("event") == "QueueEntry"]
        return members, callers

    def device_states(self) -> dict[str, str]:
        _, events = self.action("DeviceStateList")
        return {e["device"]: e["state"] for e in events if e.get("event") == "DeviceStateChange"}

    def contacts(self) -> list[Frame]:
        _, events = self.action("PJSIPShowContacts")
        return [e for e in events if e.get("event") == "ContactList"]

    def channels(self) -> list[Frame]:
        _, events = self.action("CoreShowChannels")
        return [e for e in events if e.get("event") == "CoreShowChannel"]

    # -- events ------------------------------------------------------------------------------

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_event(
        self, predicate: Callable[[Event], bool], *, since: int, timeout: float = 15.0
    ) -> Event:
        """The first event after `since` (a `mark()`) that matches, or AssertionError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AssertionError(f"no matching AMI event within {timeout}s")
                self._cond.wait(left)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"Action: Logoff\r\n\r\n")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(5)


def device_event(device: str, state: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["event"] == "DeviceStateChange"
        and e["device"].lower() == device.lower()
        and e["state"] == state
    )


def pause_event(interface: str, paused: bool) -> Callable[[Event], bool]:
    return lambda e: (
        e["event"] == "QueueMemberPause"
        and e["interface"].lower() == interface.lower()
        and e["paused"] == ("1" if paused else "0")
    )
