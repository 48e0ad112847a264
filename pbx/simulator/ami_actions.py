"""AMI actions: each handler answers one action the way Asterisk 20 does."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from pbx.simulator import events as ev
from pbx.simulator.callcentre import (
    CallCentre,
    MemberExists,
    MemberNotDynamic,
    MemberNotFound,
    NoSuchQueue,
    OriginateSpec,
)
from pbx.simulator.channels import DEVICE_STATUS, EXTENSION_STATUS, format_duration
from pbx.simulator.protocol import AmiMessage

TRUE_WORDS = {"yes", "true", "y", "t", "1", "on"}
NO_LOGIN_NEEDED = {"login", "logoff", "challenge"}
EVENT_CLASSES = {"system", "call", "log", "verbose", "command", "agent", "user", "config",
                 "dtmf", "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc",
                 "test", "security", "message"}  # fmt: skip


@dataclass
class SessionState:
    """What an AMI connection remembers between actions."""

    peer: str = ""
    authenticated: bool = False
    username: str = ""
    event_classes: frozenset[str] | None = None  # None: every class

    def wants(self, event: AmiMessage) -> bool:
        if not self.authenticated:
            return False
        if self.event_classes is None:
            return True
        classes = {c.strip() for c in (event.get("Privilege") or "").split(",")} - {"all"}
        return bool(classes & self.event_classes)


@dataclass
class Reply:
    frames: list[AmiMessage] = field(default_factory=list)
    close: bool = False


@dataclass
class Context:
    centre: CallCentre
    session: SessionState
    check_login: Callable[[str, str], bool]
    uptime: Callable[[], int]


Handler = Callable[[Context, AmiMessage], Reply | list[AmiMessage] | AmiMessage]


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


def event_mask(value: str | None) -> frozenset[str] | None:
    """The Login `Events` / Events `EventMask` header: on, off, or a list of classes."""
    text = (value or "on").strip().lower()
    if text in TRUE_WORDS:
        return None
    if text in {"off", "no", "false", "n", "f", "0"}:
        return frozenset()
    return frozenset(c.strip() for c in text.split(",") if c.strip() in EVENT_CLASSES)


def _aid(msg: AmiMessage) -> list[tuple[str, object]]:
    action_id = msg.get("ActionID")
    return [] if action_id is None else [("ActionID", action_id)]


def response(msg: AmiMessage, status: str, message: str | None = None, *extra: tuple) -> AmiMessage:
    headers: list[tuple[str, object]] = [("Response", status), *_aid(msg)]
    if message is not None:
        headers.append(("Message", message))
    headers.extend(extra)
    return AmiMessage(headers)


def success(msg: AmiMessage, message: str | None = None, *extra: tuple) -> AmiMessage:
    return response(msg, "Success", message, *extra)


def error(msg: AmiMessage, message: str) -> AmiMessage:
    return response(msg, "Error", message)


def listing(
    msg: AmiMessage, intro: str, complete: str, items: list[AmiMessage]
) -> list[AmiMessage]:
    """A list action: ack with `EventList: start`, the items, then `…Complete` with the count."""
    start = AmiMessage([("Response", "Success"), *_aid(msg), ("EventList", "start")])
    start.add("Message", intro)
    end = AmiMessage([("Event", complete), *_aid(msg), ("EventList", "Complete")])
    end.add("ListItems", len(items))
    return [start, *items, end]


def item(
    name: str, msg: AmiMessage, *blocks: list[tuple[str, object]], id_last: bool = False
) -> AmiMessage:
    body = [pair for block in blocks for pair in block]
    headers = (
        [("Event", name), *body, *_aid(msg)] if id_last else [("Event", name), *_aid(msg), *body]
    )
    return AmiMessage(headers)


# -- session -----------------------------------------------------------------------------


def login(ctx: Context, msg: AmiMessage) -> Reply:
    username, secret = msg.get("Username", ""), msg.get("Secret", "")
    if (msg.get("AuthType") or "").lower() == "md5" or not ctx.check_login(username, secret):
        # Asterisk drops the connection after a failed login.
        return Reply([error(msg, "Authentication failed")], close=True)
    session = ctx.session
    session.authenticated, session.username = True, username or ""
    session.event_classes = event_mask(msg.get("Events"))
    frames = [success(msg, "Authentication accepted")]
    booted = ev.fully_booted(ctx.uptime())
    if session.wants(booted):
        frames.append(booted)
    return Reply(frames)


def logoff(ctx: Context, msg: AmiMessage) -> Reply:
    return Reply([response(msg, "Goodbye", "Thanks for all the fish.")], close=True)


def events(ctx: Context, msg: AmiMessage) -> AmiMessage:
    ctx.session.event_classes = event_mask(msg.get("EventMask"))
    state = "Off" if ctx.session.event_classes == frozenset() else "On"
    return success(msg, None, ("Events", state))


def ping(ctx: Context, msg: AmiMessage) -> AmiMessage:
    return success(msg, None, ("Ping", "Pong"), ("Timestamp", f"{ctx.centre.now:.6f}"))


def command(ctx: Context, msg: AmiMessage) -> AmiMessage:
    text = (msg.get("Command") or "").strip().lower()
    reply = success(msg, "Command output follows")
    if text == "core show version":
        reply.add("Output", "Asterisk 20.5.0 (SWAN simulator)")
    else:
        reply.add("Output", f"No such command '{text}' (type 'core show help {text}' for help)")
    return reply


# -- queues ------------------------------------------------------------------------------


def queue_pause(ctx: Context, msg: AmiMessage) -> AmiMessage:
    interface, paused = msg.get("Interface"), msg.get("Paused")
    if not interface or paused is None:
        return error(msg, "Need 'Interface' and 'Paused' parameters.")
    pause = is_true(paused)
    try:
        ctx.centre.queue_pause(
            interface, pause, queue=msg.get("Queue") or None, reason=msg.get("Reason") or ""
        )
    except MemberNotFound:
        return error(msg, "Interface not found")
    return success(
        msg, "Interface paused successfully" if pause else "Interface unpaused successfully"
    )


def queue_add(ctx: Context, msg: AmiMessage) -> AmiMessage:
    queue, interface = msg.get("Queue"), msg.get("Interface")
    if not queue:
        return error(msg, "'Queue' not specified.")
    if not interface:
        return error(msg, "'Interface' not specified.")
    try:
        penalty = max(int(msg.get("Penalty") or 0), 0)
    except ValueError:
        penalty = 0
    try:
        ctx.centre.queue_add(
            queue,
            interface,
            member_name=msg.get("MemberName") or "",
            state_interface=msg.get("StateInterface") or "",
            penalty=penalty,
            paused=is_true(msg.get("Paused")),
            reason=msg.get("Reason") or "",
        )
    except NoSuchQueue:
        return error(msg, "Unable to add interface to queue: No such queue")
    except MemberExists:
        return error(msg, "Unable to add interface: Already there")
    return success(msg, "Added interface to queue")


def queue_remove(ctx: Context, msg: AmiMessage) -> AmiMessage:
    queue, interface = msg.get("Queue"), msg.get("Interface")
    if not queue or not interface:
        return error(msg, "Need 'Queue' and 'Interface' parameters.")
    try:
        ctx.centre.queue_remove(queue, interface)
    except NoSuchQueue:
        return error(msg, "Unable to remove interface from queue: No such queue")
    except MemberNotFound:
        return error(msg, "Unable to remove interface: Not there")
    except MemberNotDynamic:
        return error(msg, "Member not dynamic")
    return success(msg, "Removed interface from queue")


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}" if whole else "0.0"


def queue_status(ctx: Context, msg: AmiMessage) -> list[AmiMessage]:
    centre, wanted, member_filter = ctx.centre, msg.get("Queue"), msg.get("Member")
    items: list[AmiMessage] = []
    for q in centre.queues.values():
        if wanted and wanted != q.name:
            continue
        answered = q.completed + sum(1 for c in q.callers if c.connected_at)
        params = [
            ("Queue", q.name),
            ("Max", 0),
            ("Strategy", q.strategy),
            ("Calls", len(q.callers)),
            ("Holdtime", int(q.hold_total / answered) if answered else 0),
            ("TalkTime", int(q.talk_total / q.completed) if q.completed else 0),
            ("Completed", q.completed),
            ("Abandoned", q.abandoned),
            ("ServiceLevel", q.service_level),
            ("ServicelevelPerf", _percent(q.within_service_level, q.completed)),
            ("ServicelevelPerf2", _percent(q.within_service_level, q.completed + q.abandoned)),
            ("Weight", q.weight),
        ]
        items.append(item("QueueParams", msg, params, id_last=True))
        for m in q.members.values():
            if member_filter and member_filter not in (m.interface, m.name):
                continue
            row = [
                ("Queue", q.name),
                ("Name", m.name),
                ("Location", m.interface),
                ("StateInterface", m.state_interface),
                ("Membership", m.membership),
                ("Penalty", m.penalty),
                ("CallsTaken", m.calls_taken),
                ("LastCall", m.last_call),
                ("LastPause", m.last_pause),
                ("LoginTime", m.login_time),
                ("InCall", int(m.in_call)),
                ("Status", DEVICE_STATUS.get(centre.member_state(m), 0)),
                ("Paused", int(m.paused)),
                ("PausedReason", m.paused_reason),
                ("Wrapuptime", 0),
            ]
            items.append(item("QueueMember", msg, row, id_last=True))
        for position, call in enumerate(q.callers, start=1):
            ch = call.channel
            row = [
                ("Queue", q.name),
                ("Position", position),
                ("Channel", ch.name),
                ("Uniqueid", ch.uniqueid),
                ("CallerIDNum", ch.caller_num or "<unknown>"),
                ("CallerIDName", ch.caller_name or "<unknown>"),
                ("ConnectedLineNum", ch.connected_num or "<unknown>"),
                ("ConnectedLineName", ch.connected_name or "<unknown>"),
                ("Wait", centre.seconds_since(call.entered)),
                ("Priority", 0),
            ]
            items.append(item("QueueEntry", msg, row, id_last=True))
    return listing(msg, "Queue status will follow", "QueueStatusComplete", items)


# -- devices, channels, contacts -------------------------------------------------------------


def device_state_list(ctx: Context, msg: AmiMessage) -> list[AmiMessage]:
    items = [
        item("DeviceStateChange", msg, [("Device", device), ("State", state)])
        for device, state in ctx.centre.device_states().items()
    ]
    return listing(msg, "Device State Changes will follow", "DeviceStateListComplete", items)


def extension_state_list(ctx: Context, msg: AmiMessage) -> list[AmiMessage]:
    items = []
    for exten, context, hint, state in ctx.centre.hints():
        code, text = EXTENSION_STATUS.get(state, (0, "Idle"))
        block = [("Exten", exten), ("Context", context), ("Hint", hint), ("Status", code)]
        items.append(item("ExtensionStatus", msg, block, [("StatusText", text)]))
    return listing(msg, "Extension Statuses will follow", "ExtensionStateListComplete", items)


def core_show_channels(ctx: Context, msg: AmiMessage) -> list[AmiMessage]:
    now = ctx.centre.now
    items = [
        item(
            "CoreShowChannel",
            msg,
            ev.channel_block(ch),
            [
                ("Application", ch.application),
                ("ApplicationData", ch.app_data),
                ("Duration", format_duration(now - ch.created)),
                ("BridgeId", ch.bridge_id),
            ],
        )
        for ch in ctx.centre.channels.values()
    ]
    return listing(msg, "Channels will follow", "CoreShowChannelsComplete", items)


def pjsip_show_contacts(ctx: Context, msg: AmiMessage) -> list[AmiMessage]:
    items = []
    for device in ctx.centre.devices.values():
        tech, _, aor = device.interface.partition("/")
        if tech.upper() != "PJSIP" or not device.extension or not device.reachable:
            continue
        digest = zlib.crc32(device.interface.encode())
        address = f"10.0.{digest >> 8 & 0xFF}.{digest & 0xFF or 1}"
        uri = f"sip:{aor}@{address}:5060"
        contact = [
            ("ObjectType", "contact"),
            ("ObjectName", f"{aor};@{digest:08x}"),
            ("ViaAddr", address),
            ("QualifyTimeout", "3.000000"),
            ("Qualify2xxOnly", "false"),  # Asterisk 20.20 and 22.10 list it
            ("CallId", f"{digest:08x}-swan-simulator"),
            ("RegServer", ""),
            ("PruneOnBoot", "no"),
            ("Path", ""),
            ("Endpoint", aor),
            ("ViaPort", 5060),
            ("AuthenticateQualify", "no"),
            ("Uri", uri),
            ("QualifyFrequency", 60),
            ("UserAgent", "SWAN simulated phone"),
            ("ExpirationTime", int(ctx.centre.now) + 3600),
            ("OutboundProxy", ""),
            ("Status", "Reachable"),
            ("RoundtripUsec", 1500 + digest % 5000),
        ]
        items.append(item("ContactList", msg, contact))
    intro = "A listing of Contacts follows, presented as ContactList events"
    return listing(msg, intro, "ContactListComplete", items)


# -- originate -----------------------------------------------------------------------------


def originate(ctx: Context, msg: AmiMessage) -> AmiMessage:
    channel = msg.get("Channel") or ""
    if not channel:
        return error(msg, "Channel not specified")
    if "/" not in channel:
        return error(msg, "Invalid channel")
    try:
        priority = int(msg.get("Priority") or 1)
    except ValueError:
        return error(msg, "Invalid priority")
    try:
        timeout = int(msg.get("Timeout") or 30000) / 1000.0
    except ValueError:
        return error(msg, "Invalid timeout")
    asynchronous = is_true(msg.get("Async"))
    spec = OriginateSpec(
        channel=channel,
        context=msg.get("Context") or "",
        exten=msg.get("Exten") or "",
        priority=priority,
        application=msg.get("Application") or "",
        data=msg.get("Data") or "",
        caller_id=msg.get("CallerID") or "",
        timeout=timeout,
        action_id=msg.get("ActionID"),
        channel_id=msg.get("ChannelId") or "",
        report=asynchronous,
    )
    if not asynchronous and ctx.centre.find_device(channel) is None:
        return error(msg, "Originate failed")
    ctx.centre.originate(spec)
    return success(msg, "Originate successfully queued")


# -- AstDB and variables ---------------------------------------------------------------------


def _family_key(msg: AmiMessage) -> tuple[str, str] | AmiMessage:
    family, key = msg.get("Family"), msg.get("Key")
    if not family:
        return error(msg, "No family specified.")
    if not key:
        return error(msg, "No key specified.")
    return family, key


def db_put(ctx: Context, msg: AmiMessage) -> AmiMessage:
    found = _family_key(msg)
    if isinstance(found, AmiMessage):
        return found
    ctx.centre.astdb[found] = msg.get("Val") or ""
    return success(msg, "Updated database successfully")


def db_get(ctx: Context, msg: AmiMessage) -> list[AmiMessage] | AmiMessage:
    found = _family_key(msg)
    if isinstance(found, AmiMessage):
        return found
    if found not in ctx.centre.astdb:
        return error(msg, "Database entry not found")
    value = [("Family", found[0]), ("Key", found[1]), ("Val", ctx.centre.astdb[found])]
    return listing(
        msg,
        "Result will follow",
        "DBGetComplete",
        [item("DBGetResponse", msg, value, id_last=True)],
    )


def db_del(ctx: Context, msg: AmiMessage) -> AmiMessage:
    found = _family_key(msg)
    if isinstance(found, AmiMessage):
        return found
    if ctx.centre.astdb.pop(found, None) is None:
        return error(msg, "Database entry could not be deleted")  # Asterisk 20 and 22's words
    return success(msg, "Key deleted successfully")


def db_del_tree(ctx: Context, msg: AmiMessage) -> AmiMessage:
    family, prefix = msg.get("Family"), msg.get("Key") or ""
    if not family:
        return error(msg, "No family specified.")
    doomed = [k for k in ctx.centre.astdb if k[0] == family and k[1].startswith(prefix)]
    if not doomed:
        return error(msg, "Database entry not found")
    for key in doomed:
        del ctx.centre.astdb[key]
    return success(msg, "Key tree deleted successfully")


def _device_state_target(variable: str) -> str | None:
    name = variable.strip()
    if name.upper().startswith("DEVICE_STATE(") and name.endswith(")"):
        return name[len("DEVICE_STATE(") : -1]
    return None


def setvar(ctx: Context, msg: AmiMessage) -> AmiMessage:
    variable, value = msg.get("Variable"), msg.get("Value") or ""
    if not variable:
        return error(msg, "No variable specified")
    channel = msg.get("Channel")
    if channel and channel not in ctx.centre.channels:
        return error(msg, "No such channel")
    device = _device_state_target(variable)
    if device is not None:
        # Asterisk only lets the dialplan write Custom: states; anything else is ignored.
        if device.lower().startswith("custom:"):
            state = value.strip().upper()
            ctx.centre.set_custom_state(device, state if state in DEVICE_STATUS else "UNKNOWN")
    elif not channel:
        ctx.centre.globals[variable] = value
    return success(msg, "Variable Set")


def getvar(ctx: Context, msg: AmiMessage) -> AmiMessage:
    variable = msg.get("Variable")
    if not variable:
        return error(msg, "No variable specified")
    device = _device_state_target(variable)
    if device is not None:
        value = ctx.centre.device_states().get(device, "UNKNOWN")
    else:
        value = ctx.centre.globals.get(variable, "")
    return success(msg, None, ("Variable", variable), ("Value", value))


ACTIONS: dict[str, Handler] = {
    "login": login,
    "logoff": logoff,
    "events": events,
    "ping": ping,
    "command": command,
    "queuepause": queue_pause,
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuestatus": queue_status,
    "devicestatelist": device_state_list,
    "extensionstatelist": extension_state_list,
    "coreshowchannels": core_show_channels,
    "pjsipshowcontacts": pjsip_show_contacts,
    "originate": originate,
    "dbput": db_put,
    "dbget": db_get,
    "dbdel": db_del,
    "dbdeltree": db_del_tree,
    "setvar": setvar,
    "getvar": getvar,
}


def handle(ctx: Context, msg: AmiMessage) -> Reply:
    """Answers one action frame; actions other than Login/Logoff need a logged-in session."""
    action = (msg.get("Action") or "").strip()
    if not action:
        return Reply([error(msg, "Missing action in request")])
    name = action.lower()
    if not ctx.session.authenticated and name not in NO_LOGIN_NEEDED:
        return Reply([error(msg, "Permission denied")])
    handler = ACTIONS.get(name)
    if handler is None:
        text = f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."
        return Reply([error(msg, text)])
    result = handler(ctx, msg)
    if isinstance(result, Reply):
        return result
    return Reply([result] if isinstance(result, AmiMessage) else result)
