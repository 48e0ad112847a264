"""The PBX gateway: everything the service asks of the PBX goes through here."""

from pbx.gateway.base import (
    Channel,
    OriginateRequest,
    PbxActionFailed,
    PbxActions,
    PbxError,
    PbxGateway,
    PbxSnapshot,
    PbxUnavailable,
    QueueCaller,
    QueueMemberState,
    RegistrationContact,
    SpyRequest,
    check_ami_value,
)

__all__ = [
    "Channel",
    "OriginateRequest",
    "PbxActionFailed",
    "PbxActions",
    "PbxError",
    "PbxGateway",
    "PbxSnapshot",
    "PbxUnavailable",
    "QueueCaller",
    "QueueMemberState",
    "RegistrationContact",
    "SpyRequest",
    "check_ami_value",
]
