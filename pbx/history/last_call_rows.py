"""The CDR rows of a user's newest call, in plain SQL (user-resume asks for them every time).

The rows are the ones `selectors.last_call` would find through querysets, in three statements
whose text does not depend on the data: the newest row by one index lookup per way a row
involves the user (`selectors._involving`: each device as caller or callee, the extension as
source or destination), then the calls with a row since that call began, then their rows.
Ordering every involving row by time instead walked the whole time index back to the user's
last call (for a user who seldom calls, every row of the PBX since then), and compiling the
querysets cost more than running them (benchmarks/README.md).
"""

from __future__ import annotations

from django.db import connection

from pbx.models import PbxUser
from pbx.models.history import CdrRecord
from pbx.plain_sql import column, converted, marks, table

_CDR = table(CdrRecord)
_FIELDS = list(CdrRecord._meta.concrete_fields)
_ATTNAMES = [field.attname for field in _FIELDS]
_ALL_COLUMNS = ", ".join(column(CdrRecord, field.name) for field in _FIELDS)
_PBX, _COMPANY = column(CdrRecord, "pbx"), column(CdrRecord, "company")
_CALLDATE, _ID = column(CdrRecord, "calldate"), column(CdrRecord, "id")
_LINKEDID, _UNIQUEID = column(CdrRecord, "linkedid"), column(CdrRecord, "uniqueid")
_CALL_ID = f"CASE WHEN {_LINKEDID} <> '' THEN {_LINKEDID} ELSE {_UNIQUEID} END"


def newest_call_rows(user: PbxUser, devices: list[str]) -> list[CdrRecord]:
    """Every row of every call of the user that has a row since its newest call began.

    `user.company` must be loaded. None of them when the user has no CDR row."""
    newest = _newest_call_id(user, devices)
    if newest is None:
        return []
    involving, params = _involving(user, devices)
    ids_sql = (
        f"SELECT DISTINCT {_CALL_ID} FROM {_CDR} WHERE {involving} AND {_CALLDATE} >= "
        f"(SELECT MIN({_CALLDATE}) FROM {_CDR} WHERE {involving} "
        f"AND ({_LINKEDID} = %s OR {_UNIQUEID} = %s))"
    )
    convert = converted(CdrRecord, [field.name for field in _FIELDS])
    with connection.cursor() as cursor:
        cursor.execute(ids_sql, [*params, *params, newest, newest])
        ids = sorted(row[0] for row in cursor.fetchall())
        if not ids:  # the newest row's own call is one; only a row deleted meanwhile leaves none
            return []
        cursor.execute(
            f"SELECT {_ALL_COLUMNS} FROM {_CDR} WHERE {involving} "
            f"AND ({_LINKEDID} IN ({marks(ids)}) OR {_UNIQUEID} IN ({marks(ids)}))",
            [*params, *ids, *ids],
        )
        return [
            CdrRecord.from_db(connection.alias, _ATTNAMES, convert(row))
            for row in cursor.fetchall()
        ]


def _newest_call_id(user: PbxUser, devices: list[str]) -> str | None:
    """The call of the user's newest row (by time, then by id), or None."""
    company, extension = user.company_id, user.extension
    branches: list[tuple[str, list[int | str | None]]] = [
        (f"{_COMPANY} = %s AND {column(CdrRecord, 'src')} = %s", [company, extension]),
        (f"{_COMPANY} = %s AND {column(CdrRecord, 'dst')} = %s", [company, extension]),
    ]
    by_device = f"({_COMPANY} = %s OR {_COMPANY} IS NULL)"
    for device in devices:
        for side in ("channel_device", "dstchannel_device"):
            branches.append((f"{by_device} AND {column(CdrRecord, side)} = %s", [company, device]))
    # Each branch its own ordered lookup (its index leads with the PBX and the branch's column,
    # then the time); SQLite takes ORDER BY … LIMIT in a subquery, not in a compound's member.
    sql = " UNION ALL ".join(
        f"SELECT * FROM (SELECT {_CALLDATE}, {_ID}, {_CALL_ID} FROM {_CDR} "
        f"WHERE {_PBX} = %s AND {condition} ORDER BY {_CALLDATE} DESC, {_ID} DESC LIMIT 1) AS b{n}"
        for n, (condition, _params) in enumerate(branches)
    )
    params = [value for _sql, values in branches for value in (user.company.pbx_key, *values)]
    convert = converted(CdrRecord, ["calldate", "id", "linkedid"])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [convert(row) for row in cursor.fetchall()]
    if not rows:
        return None
    _calldate, _id, call_id = max(rows, key=lambda row: (row[0], row[1]))
    return call_id


def _involving(user: PbxUser, devices: list[str]) -> tuple[str, list]:
    """`selectors._involving` as SQL and its parameters."""
    src, dst = column(CdrRecord, "src"), column(CdrRecord, "dst")
    company, extension = user.company_id, user.extension
    extension_rows = f"({_COMPANY} = %s AND ({src} = %s OR {dst} = %s))"
    params: list = [user.company.pbx_key]
    if not devices:
        return f"{_PBX} = %s AND {extension_rows}", [*params, company, extension, extension]
    channel, dstchannel = (
        column(CdrRecord, "channel_device"),
        column(CdrRecord, "dstchannel_device"),
    )
    by_device = (
        f"(({channel} IN ({marks(devices)}) OR {dstchannel} IN ({marks(devices)})) "
        f"AND ({_COMPANY} = %s OR {_COMPANY} IS NULL))"
    )
    params += [*devices, *devices, company, company, extension, extension]
    return f"{_PBX} = %s AND ({by_device} OR {extension_rows})", params
