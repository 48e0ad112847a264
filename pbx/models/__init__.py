"""pbx models: the directory, and the live state the listener keeps."""

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
    validate_time_zone,
)
from pbx.models.live import (
    DeviceState,
    LiveChannel,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
)

__all__ = [
    "ApiKey",
    "Company",
    "Department",
    "DeviceState",
    "LiveChannel",
    "PbxUser",
    "PublicNumber",
    "Queue",
    "QueueCallerState",
    "QueueMember",
    "QueueMemberState",
    "UserPresence",
    "extension_validator",
    "hash_api_key",
    "validate_networks",
    "validate_time_zone",
]
