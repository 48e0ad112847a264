"""Recordings: a call's audio file for a caller that may hear it, through short-lived signed links.

An API key's link is bound to the key; a supervisor's (the dashboard) to the login, its password
and its supervision: each stops working when what it was bound to changes. A call is looked for
on the PBX of the company asking only: uniqueids repeat across PBXes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils.translation import gettext as _

from pbx.directory.agent_matching import device_of, same_device
from pbx.directory.api_keys import ApiClient
from pbx.directory.lookups import user_get
from pbx.directory.supervision import companies_for
from pbx.errors import NotFound
from pbx.history.selectors import devices_of
from pbx.local_time import local_time
from pbx.models import (
    DEFAULT_PBX,
    ApiKey,
    Company,
    LiveChannel,
    Pbx,
    PbxUser,
)
from pbx.models.history import CdrRecord, QueueEntry

ANSWERED = (QueueEntry.Outcome.ANSWERED, QueueEntry.Outcome.TRANSFERRED)
UNANSWERED = (
    QueueEntry.Outcome.ABANDONED,
    QueueEntry.Outcome.TIMEOUT,
    QueueEntry.Outcome.EMPTY,
    QueueEntry.Outcome.KEY_PRESS,
)
logger = logging.getLogger("swan.history")
RECORDING_SALT = "swan.recording"
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".wav49": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".gsm": "audio/x-gsm",
    ".m4a": "audio/mp4",
}


@dataclass(frozen=True)
class _Root:
    """A PBX's recordings folder, and the folders inside it that are other PBXes'."""

    path: Path
    foreign: tuple[Path, ...] = ()

    def holds(self, path: Path) -> Path | None:
        """The file `path` names if it lies in this PBX's folder (symlinks resolved)."""
        try:
            resolved = path.resolve()
        except OSError:
            return None
        if resolved != self.path and self.path not in resolved.parents:
            return None
        if any(resolved == other or other in resolved.parents for other in self.foreign):
            return None
        return resolved if resolved.is_file() else None


def recordings_root(pbx: str) -> _Root:
    """Where a PBX's recordings are: RECORDINGS_ROOT for the settings' PBX, RECORDINGS_ROOT/NAME
    for PBX NAME. Uniqueids repeat across PBXes, so each PBX's files keep to their folder, and
    the settings' PBX never reads the other PBXes' folders inside its own."""
    root = Path(settings.RECORDINGS_ROOT).resolve()
    if pbx != DEFAULT_PBX:
        return _Root((root / pbx).resolve())
    names = Pbx.objects.values_list("name", flat=True)
    return _Root(root, tuple((root / name).resolve() for name in names))


def recording_path(legs: list[CdrRecord], zone: ZoneInfo) -> Path | None:
    """The call's audio file in its PBX's recordings folder, if there is one.

    FreePBX writes the file name in `recordingfile` and the file in `YYYY/MM/DD/` of the call's
    local date; other dialplans name the file after the uniqueid, so that is tried too.
    """
    if not legs:
        return None
    place = recordings_root(legs[0].pbx)
    root = place.path
    for leg in legs:
        if not leg.recordingfile:
            continue
        name = Path(leg.recordingfile)
        day = leg.calldate.astimezone(zone).strftime("%Y/%m/%d")
        for candidate in (name, root / name, root / day / name.name):
            found = place.holds(candidate if candidate.is_absolute() else root / candidate)
            if found:
                return found
    for leg in legs:
        if not leg.uniqueid:
            continue
        day = leg.calldate.astimezone(zone).strftime("%Y/%m/%d")
        for folder in (root / day, root):
            if folder.is_dir():
                named = re.compile(rf"(?:^|[-_]){re.escape(leg.uniqueid)}(?:$|[-_.])")
                for candidate in sorted(folder.glob(f"*{leg.uniqueid}*")):
                    # 1796122998.1 is not 1796122998.12: the id must end where the name does
                    # or at a separator
                    found = named.search(candidate.name) and place.holds(candidate)
                    if found:
                        return found
    return None


def _call_legs(call_id: str, *, pbx: str) -> list[CdrRecord]:
    """The CDR rows of the PBX's call with this uniqueid or linkedid."""
    rows = CdrRecord.objects.filter(pbx=pbx)
    first = rows.filter(Q(uniqueid=call_id) | Q(linkedid=call_id)).first()
    if first is None:
        return []
    return list(
        rows.filter(Q(linkedid=first.call_id) | Q(uniqueid=first.call_id)).order_by(
            "calldate", "pk"
        )
    )


def recording_get(
    *,
    client: ApiClient,
    call_id: str,
    extension: str,
    company: str | None = None,
    url_for: Callable[[str], str],
) -> dict[str, Any]:
    """recording: `path` (a signed, expiring URL) for a participant, else the admin `link`."""
    user = user_get(client=client, extension=extension, company=company)
    pbx = user.company.pbx_key
    legs = [leg for leg in _call_legs(call_id, pbx=pbx) if leg.company_id == user.company_id]
    if not legs:
        # Asterisk writes a call's CDR when it hangs up: a call still up (and recording) is
        # known only from the live channels, on the devices of the user's company
        return _live_recording(client=client, user=user, call_id=call_id, url_for=url_for)
    zone = ZoneInfo(user.company.time_zone)
    audio = recording_path(legs, zone)
    call = legs[0].call_id
    live = LiveChannel.objects.filter(Q(linked_id=call) | Q(unique_id=call), pbx=pbx).exists()
    result: dict[str, Any] = {"processing": audio is None or audio.stat().st_size == 0 or live}
    devices = devices_of(user)
    took_part = (
        any(
            leg.channel_device in devices
            or leg.dstchannel_device in devices
            or user.extension in (leg.src, leg.dst)
            or device_of(leg.channel) in devices
            for leg in legs
        )
        or QueueEntry.objects.filter(
            pbx=pbx, callid__in={leg.uniqueid for leg in legs}, agent_user=user
        ).exists()
    )
    if took_part:
        result["path"] = url_for(_recording_token(client, call, user))
    else:
        result["link"] = _admin_link(user, legs[0].uniqueid, call, legs[0].calldate, zone)
    return result


def _recording_token(client: ApiClient, call: str, user: PbxUser) -> str:
    return signing.dumps(
        {"call": call, "company": user.company_id, "key": client.key.pk, "kp": client.key.prefix},
        salt=RECORDING_SALT,
    )


def supervisor_recording_token(*, call: str, company_id: int, login) -> str:
    """A recording-file token for a dashboard supervisor (a Django login), as for an API key.

    It is bound to the login and its password (the session hash): it stops working when the
    login is deactivated, changes its password or no longer supervises the company.
    """
    return signing.dumps(
        {"call": call, "company": company_id, "sup": login.pk, "sh": _login_hash(login)},
        salt=RECORDING_SALT,
    )


def _login_hash(login) -> str:
    return login.get_session_auth_hash()[:16]


def _supervisor_still_valid(payload: dict[str, Any]) -> bool:
    from django.contrib.auth import get_user_model

    login = get_user_model().objects.filter(pk=payload["sup"], is_active=True).first()
    return (
        login is not None
        and payload.get("sh") == _login_hash(login)
        and companies_for(login).filter(pk=payload["company"]).exists()
    )


def _admin_link(
    user: PbxUser, uniqueid: str, call: str, calldate: datetime, zone: ZoneInfo
) -> str | None:
    template = getattr(settings, "RECORDING_ADMIN_LINK_TEMPLATE", "")
    if not template:
        return None
    return template.format(
        uniqueid=uniqueid,
        linkedid=call,
        calldate=local_time(calldate, zone),
        company=user.company.slug,
        extension=user.extension,
    )


def _live_recording(
    *, client: ApiClient, user: PbxUser, call_id: str, url_for: Callable[[str], str]
) -> dict[str, Any]:
    """recording of a call that is still up: no CDR yet, so its audio is not finished."""
    from terminals.models import Terminal

    on_its_pbx = LiveChannel.objects.filter(pbx=user.company.pbx_key)
    first = (
        on_its_pbx.filter(Q(unique_id=call_id) | Q(linked_id=call_id))
        .order_by("started_at", "pk")
        .first()
    )
    call = (first.linked_id or first.unique_id) if first else ""
    channels = list(
        on_its_pbx.filter(Q(linked_id=call) | Q(unique_id=call)).order_by("started_at", "pk")
    )
    interfaces = {channel.interface for channel in channels}
    company_devices = {
        same_device(interface)
        for interface in Terminal.objects.filter(user__company=user.company_id).values_list(
            "interface", flat=True
        )
    }
    if not interfaces & company_devices:
        raise NotFound(_("Call '%(call)s' not found.") % {"call": call_id})
    result: dict[str, Any] = {"processing": True}
    if interfaces & set(devices_of(user)):
        result["path"] = url_for(_recording_token(client, call, user))
    else:
        zone = ZoneInfo(user.company.time_zone)
        result["link"] = _admin_link(user, call, call, channels[0].started_at, zone)
    return result


class RecordingUnavailable(Exception):
    """The signed URL is good but the audio is not (yet) there."""


class RecordingRevoked(Exception):
    """The signed URL is good but the key that issued it is not: inactive, gone, rotated
    (or the supervisor it was issued to lost access: `by_supervisor`)."""

    def __init__(self, call: Any, *, by_supervisor: bool = False):
        super().__init__(call)
        self.by_supervisor = by_supervisor


def _issuer_still_valid(payload: dict[str, Any]) -> bool:
    """The issuing key is active, has the same secret (`kp`) and still sees the call's company;
    or the issuing supervisor still watches it."""
    if "sup" in payload:
        return _supervisor_still_valid(payload)
    if "key" not in payload or "kp" not in payload:
        return False  # signed before links were bound to keys
    return (
        ApiKey.objects.filter(pk=payload["key"], prefix=payload["kp"], is_active=True)
        .filter(Q(all_companies=True) | Q(companies=payload["company"]))
        .exists()
    )


def recording_file(*, token: str) -> tuple[Path, str]:
    """The file a signed recording URL names, and its content type.

    Raises `signing.BadSignature` (or its `SignatureExpired`) for a token that is altered or
    older than RECORDING_URL_MAX_AGE, `RecordingRevoked` when the key that issued it is no
    longer valid, and `RecordingUnavailable` when there is no file.
    """
    max_age = getattr(settings, "RECORDING_URL_MAX_AGE", 3600)
    payload = signing.loads(token, salt=RECORDING_SALT, max_age=max_age)
    if not _issuer_still_valid(payload):
        logger.info("recording link refused: issuing key not valid key=%s", payload.get("key"))
        raise RecordingRevoked(payload.get("call"), by_supervisor="sup" in payload)
    company = Company.objects.filter(pk=payload["company"]).first()
    if company is None:
        raise RecordingUnavailable(payload["call"])
    legs = [
        leg
        for leg in _call_legs(str(payload["call"]), pbx=company.pbx_key)
        if leg.company_id == company.pk
    ]
    if not legs:
        raise RecordingUnavailable(payload["call"])
    zone = ZoneInfo(company.time_zone)
    path = recording_path(legs, zone)
    if path is None:
        raise RecordingUnavailable(payload["call"])
    return path, AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")
