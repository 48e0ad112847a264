"""Who is the agent: queue_log agent texts, AMI members and CDR channels matched to users (contract.md)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from pbx.directory.dnd import DndKeys
from pbx.models import PbxUser, Queue, on_pbx
from terminals.models import Terminal

_EXTENSION_IN_INTERFACE = re.compile(
    r"^(?:Local/(?P<local>\d{1,20})@.*|(?:Agent|SIP|PJSIP|IAX2)/(?P<tech>\d{1,20})|Agent:(?P<agent>\d{1,20}))$",
    re.IGNORECASE,
)
# A channel is its device plus "-<hex counter>", and ";1"/";2" for the two halves of a Local channel.
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(?:;\d)?$")


def device_of(channel: str) -> str:
    """`SIP/1001-0000000d` → `SIP/1001`; `Local/1001@from-internal-00000000;2` → `Local/1001@from-internal`."""
    return _CHANNEL_SUFFIX.sub("", channel)


def same_device(interface: str) -> str:
    # DeviceStateChange names `Local/201@from-queue` what QueueMember names `Local/201@from-queue/n`.
    return interface[:-2] if interface.lower().endswith("/n") else interface


def extension_in(interface: str) -> str | None:
    match = _EXTENSION_IN_INTERFACE.match(same_device(interface))
    if match is None:
        return None
    return match.group("local") or match.group("tech") or match.group("agent")


@dataclass
class AgentDirectory:
    """The parts of the directory that ingest matches against, loaded in a few queries."""

    queues: dict[str, tuple[int, int]] = field(default_factory=dict)
    interfaces: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    names: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    extensions: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    company_ids: frozenset[int] = frozenset()
    dnd: DndKeys = field(default_factory=DndKeys)
    _agents: dict[tuple[str, int | None], int | None] = field(default_factory=dict)

    @classmethod
    def load(cls, pbx: str | None = None) -> AgentDirectory:
        """The whole directory, or with `pbx` only that PBX's companies: an interface, a queue
        or an extension of another PBX is another's, whatever its name."""
        queues = Queue.objects.all()
        terminals = Terminal.objects.filter(user__isnull=False)
        users = PbxUser.objects.all()
        if pbx is not None:
            queues = queues.filter(pbx=pbx)
            terminals = terminals.filter(on_pbx(pbx, "user__company"))
            users = users.filter(on_pbx(pbx, "company"))
        snapshot = cls()
        snapshot.queues = {
            name: (pk, company_id)
            for pk, name, company_id in queues.values_list("pk", "name", "company_id")
        }
        interfaces = defaultdict(list)
        for interface, user_id, company_id in terminals.values_list(
            "interface", "user_id", "user__company_id"
        ):
            interfaces[same_device(interface).lower()].append((user_id, company_id))
        names = defaultdict(list)
        extensions = defaultdict(list)
        companies = set()
        for pk, name, extension, company_id in users.values_list(
            "pk", "name", "extension", "company_id"
        ):
            names[name.strip().lower()].append((pk, company_id))
            extensions[extension].append((pk, company_id))
            companies.add(company_id)
        snapshot.interfaces = dict(interfaces)
        snapshot.names = dict(names)
        snapshot.extensions = dict(extensions)
        snapshot.company_ids = frozenset(companies)
        snapshot.dnd = DndKeys.load(pbx)
        return snapshot

    def queue(self, name: str) -> tuple[int | None, int | None]:
        return self.queues.get(name, (None, None))

    def agent_user(self, agent: str, company_id: int | None) -> int | None:
        """contract.md "Who is the agent": interface, then member name, then extension inside."""
        key = (agent, company_id)
        if key not in self._agents:
            self._agents[key] = self._match_agent(agent, company_id)
        return self._agents[key]

    def _match_agent(self, agent: str, company_id: int | None) -> int | None:
        agent = agent.strip()
        if not agent or agent == "NONE":
            return None
        for candidates in (
            self.interfaces.get(same_device(agent).lower()),
            self.names.get(agent.lower()),
            self.extensions.get(extension_in(agent) or ""),
        ):
            user_id = _pick(candidates, company_id)
            if user_id is not None:
                return user_id
        return None

    def company_for_devices(self, *devices: str) -> int | None:
        """The company of the first device that is a known terminal (or a Local/ext of a user)."""
        for device in devices:
            if not device:
                continue
            for candidates in (
                self.interfaces.get(device.lower()),
                self.extensions.get(extension_in(device) or ""),
            ):
                if candidates and len({company for _, company in candidates}) == 1:
                    return candidates[0][1]
        if len(self.company_ids) == 1:
            return next(iter(self.company_ids))
        return None


def _pick(candidates: list[tuple[int, int]] | None, company_id: int | None) -> int | None:
    """The candidate in the queue's company; without a company, only an unambiguous one."""
    if not candidates:
        return None
    if company_id is not None:
        for user_id, candidate_company in candidates:
            if candidate_company == company_id:
                return user_id
        return None
    return candidates[0][0] if len(candidates) == 1 else None
