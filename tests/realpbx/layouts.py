"""The three member layouts of issue 11, as the Asterisk config the tests run with.

Every layout has the same phones (callcentre/pjsip.conf: PJSIP/201..206, password pw<ext>) and
the same queues; only how the agents are members differs:

- `pjsip`: static members `PJSIP/<ext>` (the package's callcentre layout);
- `local`: FreePBX's static `Local/<ext>@from-queue/n` with state interface `PJSIP/<ext>`;
- `hint`: the same Local members with state interface `hint:<ext>@ext-local`;
- `dynamic`: no members in queues.conf; SWAN's terminal-register adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Who is in which queue, on the PBX and in SWAN's directory alike. 202 is in both queues; 205 in
# none (the 409 of a pause); 205's terminal is a webphone.
QUEUES = {"q-sales": ("201", "202"), "q-support": ("202", "203", "204")}
NAMES = {
    "201": "Ana García",
    "202": "Bruno Díaz",
    "203": "Carla Ruiz",
    "204": "David Gil",
    "205": "Elena Sanz",
}
WEBPHONE = "205"
QUALIFY_SECONDS = 3
DIAL_CONTEXT = "from-internal"  # callcentre/extensions.conf: `_X.` answers, waits 5 s, hangs up


@dataclass(frozen=True)
class Layout:
    name: str
    static: bool

    def member(self, ext: str) -> str | None:
        """The member line of queues.conf for this agent (None: dynamic, none in the file)."""
        if self.name == "pjsip":
            return f"member => PJSIP/{ext},0,{NAMES[ext]}"
        if self.name == "local":
            return f"member => Local/{ext}@from-queue/n,0,{NAMES[ext]},PJSIP/{ext}"
        if self.name == "hint":
            return f"member => Local/{ext}@from-queue/n,0,{NAMES[ext]},hint:{ext}@ext-local"
        return None

    def interface(self, ext: str) -> str:
        """The member interface Asterisk reports for this agent."""
        if self.name in ("local", "hint"):
            return f"Local/{ext}@from-queue/n"
        return f"PJSIP/{ext}"

    def state_interface(self, ext: str) -> str:
        return f"hint:{ext}@ext-local" if self.name == "hint" else f"PJSIP/{ext}"


LAYOUTS = {
    "pjsip": Layout("pjsip", static=True),
    "local": Layout("local", static=True),
    "hint": Layout("hint", static=True),
    "dynamic": Layout("dynamic", static=False),
}

_QUEUE_DEFAULTS = """\
[general]
persistentmembers = no
autofill = yes
shared_lastcall = yes
log_membername_as_agent = no

[swan-test](!)
strategy = ringall
timeout = 10
retry = 1
wrapuptime = 0
maxlen = 0
announce-frequency = 0
announce-holdtime = no
periodic-announce-frequency = 0
joinempty = yes
leavewhenempty = no
ringinuse = no
autopause = no
reportholdtime = no
setinterfacevar = yes
timeoutrestart = no
"""

_FREEPBX_CONTEXTS = """
; FreePBX's queue member context: a Local member dials the phone.
[from-queue]
exten => _X.,1,Dial(PJSIP/${EXTEN},,)
 same => n,Hangup()

; The history and recording tests' callers (Originate Local/<exten>@incoming).
[incoming]
; q-sales with the Queue() app's own timeout of 3 s: EXITWITHTIMEOUT when nobody answers
exten => sales-timeout,1,Answer()
 same => n,Queue(q-sales,,,,3)
 same => n,Hangup()
; recorded into the spool's monitor/ folder (RECORDINGS_ROOT of the recording test), named
; after the caller channel's uniqueid
exten => sales-rec,1,Answer()
 same => n,MixMonitor(${UNIQUEID}.wav)
 same => n,Queue(q-sales,,,,60)
 same => n,Hangup()
; a call that only makes a CDR row: written after every call hung up before it
exten => cdr-mark,1,Answer()
 same => n,Hangup()

; FreePBX's hints: hint:<ext>@ext-local follows the phone.
[ext-local]
"""

_CDR = """\
[general]
enable = yes
unanswered = no
congestion = no
batch = no

[csv]
usegmtime = no
loguniqueid = yes
loguserfield = yes
accountlogs = no
newcdrcolumns = yes
"""


# SWAN's AMI user exactly as docs/listener.md documents it (tests/project/test_docs.py keeps the
# two equal), so the suite proves the least-privilege user and its eventfilter are enough; the
# tests' own observer has the package's wider user to see and drive everything.
SWAN_AMI_READ = "call,agent,system"
SWAN_AMI_WRITE = "call,agent,system,originate"
SWAN_AMI_EVENTFILTER = (
    "Event: (DeviceStateChange|QueueMember(Added|Removed|Status|Pause)|"
    "QueueCaller(Join|Leave|Abandon)|Newchannel|Newstate|NewConnectedLine|Hangup|FullyBooted)"
)
OBSERVER_USERNAME, OBSERVER_SECRET = "observer", "observer-secret"


def _manager(swan_user: str, swan_secret: str) -> str:
    return f"""\
[general]
enabled = yes
webenabled = no
port = @AMI_PORT@
bindaddr = 127.0.0.1
displayconnects = yes
timestampevents = yes

[{swan_user}]
secret = {swan_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = {SWAN_AMI_READ}
write = {SWAN_AMI_WRITE}
eventfilter = {SWAN_AMI_EVENTFILTER}
writetimeout = 5000

[{OBSERVER_USERNAME}]
secret = {OBSERVER_SECRET}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = system,call,agent,user,reporting
write = call,agent,originate,system,reporting
writetimeout = 5000
"""


def write_overrides(
    layout: Layout, package: Path, folder: Path, *, swan_user: str, swan_secret: str
) -> Path:
    """The SWAN_ASTERISK_CONF_OVERRIDES folder of this layout: pjsip.conf of the package's
    callcentre/ (qualified more often), and the tests' own queues.conf, extensions.conf and cdr.conf."""
    folder.mkdir(parents=True, exist_ok=True)
    pjsip = (package / "callcentre" / "pjsip.conf").read_text()
    # qualify every 3 s (callcentre's 5 s): a killed phone is UNAVAILABLE sooner
    pjsip = pjsip.replace("qualify_frequency = 5", f"qualify_frequency = {QUALIFY_SECONDS}")
    (folder / "pjsip.conf").write_text(pjsip)
    queues = [_QUEUE_DEFAULTS]
    for queue, extensions in QUEUES.items():
        queues.append(f"\n[{queue}](swan-test)\n")
        queues += [f"{line}\n" for ext in extensions if (line := layout.member(ext))]
    (folder / "queues.conf").write_text("".join(queues))
    dialplan = (package / "callcentre" / "extensions.conf").read_text()
    hints = "".join(f"exten => {ext},hint,PJSIP/{ext}\n" for ext in NAMES)
    (folder / "extensions.conf").write_text(dialplan + _FREEPBX_CONTEXTS + hints)
    (folder / "cdr.conf").write_text(_CDR)
    (folder / "manager.conf").write_text(_manager(swan_user, swan_secret))
    return folder
