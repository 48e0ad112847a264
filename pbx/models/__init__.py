"""pbx models: the directory, and the live state the listener keeps."""

from pbx.models.agents import AgentEvent, AgentPause, AgentSession
from pbx.models.directory import (
    ApiKey,
    Company,
    Department,
    PbxUser,
    PublicNumber,
    Queue,
    QueueMember,
    extension_validator,
    hash_api_key,
    validate_networks,
    validate_no_control_characters,
    validate_time_zone,
)
from pbx.models.history import CdrRecord, IngestCursor, QueueEntry, QueueLogFile, QueueLogLine
from pbx.models.live import (
    DeviceState,
    ListenerLease,
    LiveChange,
    LiveChannel,
    LiveVersion,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
)

__all__ = [
    "AgentEvent",
    "AgentPause",
    "AgentSession",
    "ApiKey",
    "CdrRecord",
    "Company",
    "Department",
    "DeviceState",
    "IngestCursor",
    "ListenerLease",
    "LiveChange",
    "LiveChannel",
    "LiveVersion",
    "PbxUser",
    "PublicNumber",
    "Queue",
    "QueueCallerState",
    "QueueEntry",
    "QueueLogFile",
    "QueueLogLine",
    "QueueMember",
    "QueueMemberState",
    "UserPresence",
    "extension_validator",
    "hash_api_key",
    "validate_networks",
    "validate_no_control_characters",
    "validate_time_zone",
]
