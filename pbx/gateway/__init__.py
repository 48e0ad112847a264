"""The PBX gateway: everything the service asks of the PBX goes through here."""

from pbx.gateway.base import (
    ChannelRow,
    OriginateRequest,
    PbxActionFailed,
    PbxActions,
    PbxAddress,
    PbxError,
    PbxGateway,
    PbxSnapshot,
    PbxUnavailable,
    QueueCallerRow,
    QueueMemberRow,
    RegistrationContact,
    SpyRequest,
    check_ami_value,
)

__all__ = [
    "ChannelRow",
    "OriginateRequest",
    "PbxActionFailed",
    "PbxActions",
    "PbxAddress",
    "PbxError",
    "PbxGateway",
    "PbxSnapshot",
    "PbxUnavailable",
    "QueueCallerRow",
    "QueueMemberRow",
    "RegistrationContact",
    "SpyRequest",
    "check_ami_value",
]
