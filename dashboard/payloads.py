"""The shapes of what the dashboard's websockets carry: one TypedDict per message payload.

docs/websocket.md describes them for clients; selectors build them, broadcast sends them.
"""

from __future__ import annotations

from typing import Any, TypedDict

from pbx.history.selectors import AlarmBreach


class UserStatusPayload(TypedDict):
    """`user.status`: one BLF row (pbx.live.presence.user_status) and when the status began.

    `reason` is the pause or do-not-disturb reason alone ("" when `description` is just the
    translated status label), so a page in another language can label the status itself.
    """

    extension: str
    id: int
    name: str
    status: str
    description: str
    reason: str
    since: str | None


class QueueMemberPayload(TypedDict):
    extension: str | None
    name: str
    paused: bool
    paused_reason: str
    in_call: bool


class QueueCallerPayload(TypedDict):
    caller: str
    position: int
    entered_at: str


class AlarmRules(TypedDict):
    waiting_calls: int | None
    wait_seconds: int | None
    service_ratio_below: float | None
    abandoned_ratio_below: float | None


class QueueUpdatePayload(TypedDict):
    """`queue.update`: one queue group's queues-status figures and who is in it now."""

    group: str
    display_name: str
    queues: list[str]
    completed: int
    abandoned: int
    abandonedRatio: float
    avgRingTime: float
    avgRingTimeRatio: float
    maxRingTime: int
    ringTimeOK: int
    serviceRatio: float
    currentCalls: int
    alarm: bool
    alarm_reasons: list[str]
    alarm_breaches: list[AlarmBreach]
    alarm_rules: AlarmRules
    members: list[QueueMemberPayload]
    callers: list[QueueCallerPayload]


class HourCount(TypedDict):
    hour: int
    answered: int
    abandoned: int


class CallsHourlyPayload(TypedDict):
    """`calls.hourly`: today's queue calls per local hour, answered vs abandoned."""

    date: str
    hours: list[HourCount]


class PbxConnectionPayload(TypedDict):
    """`pbx.gateway.connection`: whether the listener is connected to the PBX, and since when."""

    connected: bool | None
    since: str | None


class CompanyInfo(TypedDict):
    slug: str
    name: str
    time_zone: str


class SnapshotPayload(TypedDict):
    """`snapshot`: everything a dashboard shows; it replaces whatever the client had."""

    company: CompanyInfo
    users: list[UserStatusPayload]
    queues: list[QueueUpdatePayload]
    hourly: CallsHourlyPayload
    pbx: PbxConnectionPayload
    stale: bool
    generated_at: str


class Message(TypedDict):
    """What a websocket client receives; `seq` increases by one per message of the company."""

    type: str
    seq: int
    company: int
    sent_at: str
    payload: dict[str, Any]
