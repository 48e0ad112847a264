"""The PBX gateway over AMI, on pyst2 with its 0.5.1 defects fixed in a subclass.

Do-not-disturb is what FreePBX does, so its dialplan and phones agree with us: `DBPut` family
`DND`, key = the DND key (the extension, or the company's prefix + the extension), value `YES`
(`DBDel` to clear), plus `Setvar` `DEVICE_STATE(Custom:DND<key>)` = `BUSY` / `NOT_INUSE` so that
BLF hints on `Custom:DND<key>` light up. See docs/pbx.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asterisk.manager

from pbx.gateway import snapshot as rows
from pbx.gateway.base import (
    EventHandler,
    OriginateRequest,
    PbxActionFailed,
    PbxAddress,
    PbxError,
    PbxSnapshot,
    PbxUnavailable,
    SpyRequest,
    check_ami_value,
    spy_data,
)
from pbx.gateway.events import PbxEvent, parse_event
from pbx.gateway.frames import Frame, FrameParser, encode_action

logger = logging.getLogger(__name__)

Pairs = list[tuple[str, object]]
RECV_SIZE = 65536
CONNECTION_LOST = Frame([("Event", "SwanConnectionLost")])


class _Unknown:
    """A value the PBX did not tell (an AstDB read that failed for another reason than none)."""


UNKNOWN = _Unknown()


@dataclass
class AmiReply:
    """The response to one action and, for a list action, the events that answered it."""

    response: Frame
    events: list[Frame] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.response.get("Response", "").strip().lower() in (
            "success",
            "follows",
            "goodbye",
        )

    @property
    def message(self) -> str:
        return self.response.get("Message", "")

    def get_header(self, name: str, default: str | None = None) -> str | None:
        """pyst2's own helpers (`login`, `dbput` …) read the answer through this."""
        return self.response.get(name, default)


class _Pending:
    __slots__ = ("done", "events", "is_list", "lost", "response")

    def __init__(self, is_list: bool):
        self.is_list = is_list
        self.response: Frame | None = None
        self.events: list[Frame] = []
        self.lost = False
        self.done = threading.Event()


def _is_complete(frame: Frame) -> bool:
    # Asterisk 11 QueueStatus sends no EventList headers at all: QueueStatusComplete ends it.
    return frame.get("EventList", "").lower() == "complete" or frame.name.endswith("Complete")


class AmiConnection(asterisk.manager.Manager):
    """One AMI session. Keeps pyst2's threads, callback registry and dispatcher; replaces its
    reader (one byte per syscall, no timeouts, dies on ChanVariable), its FIFO answer matching,
    its shared-default ActionID and its close() that hangs while the peer keeps the socket."""

    def __init__(self, timeout: float):
        with warnings.catch_warnings():
            # pyst2 calls Thread.setDaemon, deprecated since Python 3.10
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__()
        self.timeout = timeout
        self._raw: socket.socket | None = None
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._greeted = threading.Event()
        self._closing = threading.Event()
        self._id_prefix = f"swan-{os.getpid()}-{id(self):x}"
        self.events_on = False  # whether the PBX sends this session its events

    def connect(self, host: str, port: int = 5038) -> str:
        try:
            self._raw = socket.create_connection((host, int(port)), timeout=self.timeout)
        except OSError as exc:
            raise PbxUnavailable(f"AMI at {host}:{port} unreachable: {exc}") from exc
        self._connected.set()
        self._running.set()
        self.message_thread.start()
        self.event_dispatch_thread.start()
        if not self._greeted.wait(self.timeout) or not self._connected.is_set():
            self.close()
            raise PbxUnavailable(f"AMI at {host}:{port} sent no banner within {self.timeout}s")
        return self.title or ""

    def connected(self) -> bool:
        return self._connected.is_set()

    def event_dispatch(self) -> None:
        """pyst2's dispatcher loop, without its deprecated isSet() calls."""
        while True:
            event = self._event_queue.get()
            if event is None:
                return
            callbacks = self._event_callbacks.get(event.name, []) + self._event_callbacks.get(
                "*", []
            )
            for callback in callbacks:
                if callback(event, self):
                    break

    def message_loop(self) -> None:
        """pyst2 runs this on its message thread: read, parse, route."""
        parser = FrameParser()
        sock = self._raw
        assert sock is not None
        try:
            while self._running.is_set():
                try:
                    data = sock.recv(RECV_SIZE)
                except TimeoutError:
                    continue  # an idle PBX is not a dead one; actions time out on their own
                except OSError:
                    break
                if not data:
                    break
                for frame in parser.feed(data):
                    self._route(frame)
                if parser.banner is not None and not self._greeted.is_set():
                    self.title, _, self.version = parser.banner.partition("/")
                    self._greeted.set()
        finally:
            self._lost()

    def _route(self, frame: Frame) -> None:
        action_id = frame.action_id
        with self._lock:
            pending = self._pending.get(action_id) if action_id is not None else None
            if action_id is not None and pending is not None:
                if not frame.is_event:
                    pending.response = frame
                    ok = frame.get("Response", "").strip().lower() == "success"
                    if not (pending.is_list and ok):
                        del self._pending[action_id]
                        pending.done.set()
                    return
                if pending.is_list:
                    pending.events.append(frame)
                    if _is_complete(frame) and pending.response is not None:
                        del self._pending[action_id]
                        pending.done.set()
                    return
        if frame.is_event:
            self._event_queue.put(frame)
        else:
            logger.debug("AMI answer nobody waits for (timed out?): %s", frame.pairs)

    def _lost(self) -> None:
        # Dropped or closed by us: decided before the session shows as down. Once it does,
        # another thread's action closes it to log in again, and the drop would be taken for
        # our own close (the listener never told, no snapshot taken).
        dropped = not self._closing.is_set()
        self._connected.clear()
        self._greeted.set()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for waiter in pending:
            waiter.lost = True
            waiter.done.set()
        if dropped:
            self._event_queue.put(CONNECTION_LOST)
        self._event_queue.put(None)  # stops pyst2's dispatcher

    def request(
        self, pairs: Pairs, *, is_list: bool = False, timeout: float | None = None
    ) -> AmiReply:
        """Send one action with a fresh ActionID; wait for its answer (and list) or time out."""
        action = next((str(v) for k, v in pairs if k.lower() == "action"), "")
        action_id = f"{self._id_prefix}-{self.next_seq()}"
        headers = [(k, v) for k, v in pairs if k.lower() not in ("action", "actionid")]
        data = encode_action([("Action", action), ("ActionID", action_id), *headers])
        if not self._connected.is_set() or self._raw is None:
            raise PbxUnavailable(f"{action}: not connected to AMI")
        waiter = _Pending(is_list)
        with self._lock:
            self._pending[action_id] = waiter
        try:
            with self._send_lock:
                self._raw.sendall(data)
        except OSError as exc:
            self._forget(action_id)
            raise PbxUnavailable(f"{action}: send failed: {exc}") from exc
        limit = self.timeout if timeout is None else timeout
        if not waiter.done.wait(limit):
            self._forget(action_id)
            raise PbxUnavailable(f"{action}: no answer within {limit}s")
        if waiter.lost or waiter.response is None:
            raise PbxUnavailable(f"{action}: connection dropped before the answer was complete")
        return AmiReply(waiter.response, waiter.events)

    def _forget(self, action_id: str) -> None:
        with self._lock:
            self._pending.pop(action_id, None)

    def send_action(self, cdict: Mapping[str, object] | None = None, **kwargs: object) -> AmiReply:
        """pyst2's signature, without its shared default dict; list values repeat the header."""
        pairs: Pairs = []
        for key, value in {**(cdict or {}), **kwargs}.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((key, item) for item in values)
        return self.request(pairs)

    def close(self) -> None:
        """Log off if still up, then close the socket; never waits longer than the timeout."""
        raw = getattr(self, "_raw", None)
        if raw is None:
            return
        self._closing.set()
        if self._connected.is_set():
            with contextlib.suppress(PbxError):
                self.request([("Action", "Logoff")], timeout=min(self.timeout, 1.0))
        self._running.clear()
        # shutdown wakes the reader blocked in recv even when the peer keeps the socket open
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        raw.close()
        current = threading.current_thread()
        for thread in (self.message_thread, self.event_dispatch_thread):
            if thread.is_alive() and thread is not current:
                thread.join(self.timeout)


class AmiGateway:
    """`PbxGateway` over AMI. Connects (and logs in) on first use, again after a drop."""

    def __init__(self, host: str, port: int, username: str, secret: str, timeout: float = 5.0):
        self.host, self.port = host, int(port)
        self.username, self.secret = username, secret
        self.timeout = float(timeout)
        self._conn: AmiConnection | None = None
        self._conn_lock = threading.Lock()
        self._handlers: list[EventHandler] = []
        self._on_disconnect: list[Callable[[], None]] = []

    @classmethod
    def for_address(cls, address: PbxAddress) -> AmiGateway:
        return cls(
            host=address.host,
            port=address.port,
            username=address.username,
            secret=address.secret,
            timeout=address.timeout,
        )

    @classmethod
    def from_settings(cls) -> AmiGateway:
        """The settings' PBX (AMI_*): the one default PBX."""
        from django.conf import settings

        return cls(
            host=settings.AMI_HOST,
            port=settings.AMI_PORT,
            username=settings.AMI_USERNAME,
            secret=settings.AMI_SECRET,
            timeout=settings.AMI_TIMEOUT,
        )

    # -- connection ------------------------------------------------------------------------

    def _connection(self) -> AmiConnection:
        with self._conn_lock:
            if self._conn is not None:
                if self._conn.connected():
                    return self._conn
                self._conn.close()
                self._conn = None
            check_ami_value("Username", self.username)
            check_ami_value("Secret", self.secret)
            conn = AmiConnection(self.timeout)
            conn.register_event("*", self._dispatch)
            conn.connect(self.host, self.port)
            # Events only for a session that subscribed (the listener): a REST request's session
            # would otherwise be sent every event of the PBX while it lives.
            events = "on" if self._handlers else "off"
            try:
                reply = conn.request(
                    [
                        ("Action", "Login"),
                        ("Username", self.username),
                        ("Secret", self.secret),
                        ("Events", events),
                    ]
                )
            except PbxError:
                conn.close()
                raise
            if not reply.ok:
                conn.close()
                raise PbxUnavailable(f"AMI login refused: {reply.message}")
            conn.events_on = events == "on"
            self._conn = conn
            return conn

    def _dispatch(self, frame: Frame, _manager: object) -> None:
        if frame is CONNECTION_LOST:
            for callback in list(self._on_disconnect):
                callback()
            return
        for handler in list(self._handlers):
            try:
                handler(frame)
            except Exception:
                # pyst2's dispatcher thread dies on an exception; one bad handler must not stop events
                logger.exception("AMI event handler failed on %s", frame.name)

    def _call(self, *actions: Pairs, is_list: bool = False) -> list[AmiReply]:
        for pairs in actions:
            encode_action(pairs)  # every value checked before anything goes out
        conn = self._connection()
        replies = []
        for pairs in actions:
            reply = conn.request(pairs, is_list=is_list)
            replies.append(reply)
        return replies

    def _ok(self, pairs: Pairs, *, is_list: bool = False) -> AmiReply:
        (reply,) = self._call(pairs, is_list=is_list)
        if not reply.ok:
            raise PbxActionFailed(str(pairs[0][1]), reply.message)
        return reply

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.connected()

    def events(
        self, handler: EventHandler, *, on_disconnect: Callable[[], None] | None = None
    ) -> Callable[[], None]:
        """Deliver every unsolicited event to `handler` (on pyst2's dispatcher thread) from now
        on; connects if needed. `on_disconnect` is called when the session drops. Returns an
        unsubscribe function."""
        self._handlers.append(handler)
        if on_disconnect is not None:
            self._on_disconnect.append(on_disconnect)
        conn = self._connection()
        if not conn.events_on:  # logged in for actions only: ask for the events now
            self._ok([("Action", "Events"), ("EventMask", "on")])
            conn.events_on = True

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)
            if on_disconnect in self._on_disconnect:
                self._on_disconnect.remove(on_disconnect)

        return unsubscribe

    def live_events(
        self,
        handler: Callable[[PbxEvent], None],
        *,
        on_disconnect: Callable[[], None] | None = None,
    ) -> Callable[[], None]:
        """As `events`, each frame parsed into its typed event first: the listener never sees
        the wire."""
        return self.events(lambda frame: handler(parse_event(frame)), on_disconnect=on_disconnect)

    def close(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- actions ---------------------------------------------------------------------------

    def originate(self, request: OriginateRequest) -> bool:
        pairs: Pairs = [
            ("Action", "Originate"),
            ("Channel", request.channel),
            ("Context", request.context),
            ("Exten", request.exten),
            ("Priority", request.priority),
            ("Timeout", request.timeout_ms),
            ("Async", "true"),
        ]
        if request.caller_id:
            pairs.append(("CallerID", request.caller_id))
        pairs.extend(
            ("Variable", f"{check_ami_value('Variable', k)}={v}")
            for k, v in request.variables.items()
        )
        return self._ok(pairs).ok

    def spy(self, request: SpyRequest) -> str:
        """An Originate of the supervisor's device running ChanSpy on the agent's channel."""
        pairs: Pairs = [
            ("Action", "Originate"),
            ("Channel", request.device),
            ("Application", "ChanSpy"),
            ("Data", spy_data(request)),
            ("Timeout", request.timeout_ms),
            ("Async", "true"),
        ]
        if request.caller_id:
            pairs.append(("CallerID", request.caller_id))
        return self._ok(pairs).message

    def queue_pause(
        self, *, interface: str, paused: bool, queue: str | None = None, reason: str = ""
    ) -> str:
        pairs: Pairs = [
            ("Action", "QueuePause"),
            ("Interface", interface),
            ("Paused", "true" if paused else "false"),
        ]
        if queue:
            pairs.append(("Queue", queue))
        if reason:
            pairs.append(("Reason", reason))
        return self._ok(pairs).message

    def queue_add(
        self,
        *,
        queue: str,
        interface: str,
        member_name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
    ) -> str:
        pairs: Pairs = [
            ("Action", "QueueAdd"),
            ("Queue", queue),
            ("Interface", interface),
            ("Penalty", int(penalty)),
            ("Paused", "true" if paused else "false"),
        ]
        if member_name:
            pairs.append(("MemberName", member_name))
        if state_interface:
            pairs.append(("StateInterface", state_interface))
        return self._ok(pairs).message

    def queue_remove(self, *, queue: str, interface: str) -> str:
        return self._ok(
            [("Action", "QueueRemove"), ("Queue", queue), ("Interface", interface)]
        ).message

    def set_dnd(self, *, key: str, enabled: bool, reason: str = "") -> str:
        """FreePBX's DND: the AstDB key drives the dialplan, the custom device state the BLF.
        `key` is pbx.directory.dnd.dnd_key_of(user), never a bare extension of a shared PBX.
        `reason` is checked but not sent: FreePBX's mechanism has nowhere to keep it.

        All or nothing: when the device state is refused after the key was written, the key is
        put back as it was (read first), and the error says whether that worked. Else the
        dialplan would refuse calls (or let them through) while SWAN answered that nothing
        changed."""
        check_ami_value("reason", reason)
        if enabled:
            database: Pairs = [("Action", "DBPut"), ("Family", "DND"), ("Key", key)]
            database.append(("Val", "YES"))
        else:
            database = [("Action", "DBDel"), ("Family", "DND"), ("Key", key)]
        state: Pairs = [
            ("Action", "Setvar"),
            ("Variable", f"DEVICE_STATE(Custom:DND{key})"),
            ("Value", "BUSY" if enabled else "NOT_INUSE"),
        ]
        encode_action(state)  # checked before anything is written
        before = self._astdb_value("DND", key)
        (db_reply,) = self._call(database)
        # Clearing DND that was never set: DBDel answers Error, the end state is still right.
        if not db_reply.ok and enabled:
            raise PbxActionFailed("DBPut", db_reply.message)
        try:
            (state_reply,) = self._call(state)
        except PbxUnavailable as exc:
            if not db_reply.ok:
                raise
            # Whether Asterisk set the device state is not known (a timeout may hide a done
            # Setvar): nothing is put back, and the operator is told what was written.
            done = "written" if enabled else "deleted"
            logger.error(
                "DND half known key=%s astdb=%s device_state=unknown error=%s", key, done, exc
            )
            raise PbxUnavailable(
                f"{exc}; the AstDB key DND/{key} was {done} before it, the device state is not known"
            ) from exc
        if not state_reply.ok:
            undone = self._put_back("DND", key, before) if db_reply.ok else "the key is as it was"
            raise PbxActionFailed("Setvar", f"{state_reply.message}; {undone}")
        return f"{db_reply.message}; {state_reply.message}"

    def _astdb_value(self, family: str, key: str) -> str | _Unknown | None:
        """The AstDB value of family/key: None when there is none, UNKNOWN when the PBX did
        not say (an error other than 'not found')."""
        (reply,) = self._call([("Action", "DBGet"), ("Family", family), ("Key", key)], is_list=True)
        if not reply.ok:
            return None if "not found" in reply.message.lower() else UNKNOWN
        for event in reply.events:
            if event.name == "DBGetResponse":
                return event.get("Val", "")
        return UNKNOWN

    def _put_back(self, family: str, key: str, value: str | _Unknown | None) -> str:
        """Writes family/key back to `value` (deletes it for None); says what came of it."""
        if value is UNKNOWN:
            outcome = "its value before was not known"
        else:
            if value is None:
                action: Pairs = [("Action", "DBDel"), ("Family", family), ("Key", key)]
            else:
                action = [("Action", "DBPut"), ("Family", family), ("Key", key), ("Val", value)]
            try:
                (reply,) = self._call(action)
            except PbxError as exc:
                outcome = str(exc)
            else:
                if reply.ok:
                    return f"the AstDB key {family}/{key} was put back as it was"
                outcome = reply.message
        logger.error("AstDB key left changed family=%s key=%s error=%s", family, key, outcome)
        return f"the AstDB key {family}/{key} could not be put back ({outcome})"

    def ping(self) -> None:
        """A round trip that proves the session is alive (the listener's heartbeat)."""
        self._ok([("Action", "Ping")])

    def snapshot(self) -> PbxSnapshot:
        taken_at = datetime.now(UTC)
        devices = self._optional_list("DeviceStateList")  # Asterisk 13+
        queues = self._ok([("Action", "QueueStatus")], is_list=True).events
        live = self._ok([("Action", "CoreShowChannels")], is_list=True).events
        contacts = self._optional_list("PJSIPShowContacts")  # needs chan_pjsip, Asterisk 16+
        return PbxSnapshot(
            taken_at=taken_at,
            device_states=rows.device_states(devices),
            queue_members=rows.queue_members(queues),
            queue_callers=rows.queue_callers(queues),
            channels=rows.channels(live),
            contacts=rows.contacts(contacts),
        )

    def _optional_list(self, action: str) -> Iterable[Frame]:
        try:
            return self._ok([("Action", action)], is_list=True).events
        except PbxActionFailed as exc:
            logger.info("AMI %s not available (%s): left out of the snapshot", action, exc.message)
            return []
