"""ingest_cdr on the real Master.csv layouts and on a `cdr` table through a database connection."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db.utils import ConnectionHandler

from pbx.history.ingest.cdr_db import TableIngest
from pbx.history.ingest.runner import cdr_time_zone
from pbx.models.history import CdrRecord
from tests.conftest import fixtures_path

pytestmark = pytest.mark.django_db

SYNKBUG = ("cdr", "issabel_synkbug_cdr_csv_Master_18col_utc.csv")
CUSTOM = ("cdr", "cdr_custom_master_pjsip_kelysaina.csv")


def test_it_loads_the_18_column_cdr_csv(ingest, company, make_user):
    ram = make_user(company, "1002", "ram", terminals=["SIP/1002"])

    out, err = ingest("ingest_cdr", fixtures_path(*SYNKBUG), time_zone="UTC")

    # 736 lines (grep -c ''), all 18 columns; FORMATS.md: this file's times are UTC.
    assert "736 lines read, 736 new, 0 already stored, 0 blank, 0 malformed" in out
    assert err == ""
    # grep -c '"ANSWERED"' → 409
    assert CdrRecord.objects.filter(disposition="ANSWERED").count() == 409
    first = CdrRecord.objects.get(uniqueid="1655439214.5")
    # uniqueid's epoch 1655439214 is the start: 2022-06-17 04:13:34 UTC.
    assert first.calldate == datetime(2022, 6, 17, 4, 13, 34, tzinfo=UTC)
    assert first.answer is None  # unquoted empty field
    assert (first.clid, first.channel_device, first.disposition) == (
        '"karthik" <1001>',
        "SIP/1001",
        "CONGESTION",
    )
    assert first.linkedid == ""
    assert CdrRecord.objects.filter(uniqueid="1655439415.29").count() == 2  # Dial + Busy rows
    local = CdrRecord.objects.filter(channel__startswith="Local/1001@from-internal-00000001;2")
    assert set(local.values_list("channel_device", flat=True)) == {"Local/1001@from-internal"}
    # One company in the directory: every row is its.
    assert CdrRecord.objects.filter(company=company).count() == 736
    assert ram.company == company


def test_a_second_run_adds_nothing(ingest):
    path = fixtures_path(*SYNKBUG)
    ingest("ingest_cdr", path, time_zone="UTC")
    from pbx.models.history import IngestCursor

    IngestCursor.objects.all().delete()
    out, _ = ingest("ingest_cdr", path, time_zone="UTC")
    assert "736 lines read, 0 new, 736 already stored" in out


def test_it_loads_cdr_custom_rows_in_the_pbx_local_time(ingest):
    out, _ = ingest("ingest_cdr", fixtures_path(*CUSTOM), time_zone="Europe/Madrid")

    # 14 lines of 19 columns: cdr_custom's sample layout (clid first, sequence last).
    assert "14 lines read, 14 new" in out
    row = CdrRecord.objects.get(uniqueid="1690325492.2")
    assert row.clid == '"" <client1>'
    assert (row.src, row.dst, row.billsec, row.duration, row.sequence) == (
        "client1",
        "6789",
        13,
        31,
        "2",
    )
    # 01:51:32 in Madrid (UTC+2 in July) is 23:51:32 UTC the day before.
    assert row.calldate == datetime(2023, 7, 25, 23, 51, 32, tzinfo=UTC)
    assert row.answer == datetime(2023, 7, 25, 23, 51, 50, tzinfo=UTC)
    assert CdrRecord.objects.get(uniqueid="1690325531.5").answer is None  # quoted empty answer


def test_cdr_time_zone_defaults_to_the_setting(settings):
    settings.CDR_TIME_ZONE = "America/Caracas"
    assert str(cdr_time_zone()) == "America/Caracas"
    del settings.CDR_TIME_ZONE
    assert str(cdr_time_zone()) == settings.TIME_ZONE


def test_rows_with_the_wrong_number_of_columns_are_reported(ingest, tmp_path):
    path = tmp_path / "Master.csv"
    good = fixtures_path(*SYNKBUG).read_text().splitlines()[1]
    path.write_text(f'"a","b"\n{good}\n{good.replace(",24,19,", ",x,19,")}\n')

    out, err = ingest("ingest_cdr", path, time_zone="UTC")

    assert "3 lines read, 1 new, 0 already stored, 0 blank, 2 malformed" in out
    assert "line 1: 2 columns" in err
    assert "line 3: duration 'x' is not a whole number" in err


def test_the_21_column_layout_carries_linkedid(ingest, tmp_path):
    path = tmp_path / "Master.csv"
    path.write_text(
        '"","200","600","from-internal","""Ana"" <200>","PJSIP/200-00000001","PJSIP/600-00000002",'
        '"Dial","PJSIP/600","2024-03-31 01:59:00","2024-03-31 01:59:05","2024-03-31 03:00:05",'
        '65,60,"ANSWERED","DOCUMENTATION","1711850340.1","","","1711850340.0",3\n'
    )
    ingest("ingest_cdr", path, time_zone="Europe/Madrid")
    row = CdrRecord.objects.get()
    assert (row.linkedid, row.sequence, row.call_id) == ("1711850340.0", "3", "1711850340.0")
    # Madrid moved to summer time at 02:00 that night: 01:59 CET is 00:59 UTC, 03:00 CEST 01:00.
    assert row.calldate == datetime(2024, 3, 31, 0, 59, tzinfo=UTC)
    assert row.end == datetime(2024, 3, 31, 1, 0, 5, tzinfo=UTC)


def _fixture_lines() -> list[str]:
    """The real 18-column file's lines: they end with uniqueid and userfield, neither with a comma."""
    return fixtures_path(*SYNKBUG).read_text().splitlines()


def _stored() -> list[tuple]:
    fields = ["calldate", "src", "dst", "clid", "channel", "disposition", "duration", "billsec"]
    return sorted(CdrRecord.objects.values_list(*fields))


def test_cdr_csv_with_its_default_16_columns_loads_as_the_18(ingest, tmp_path):
    """Asterisk's cdr_csv logs uniqueid and userfield only when cdr.conf's [csv] says so."""
    ingest("ingest_cdr", fixtures_path(*SYNKBUG), time_zone="UTC")
    with_uniqueids = _stored()
    CdrRecord.objects.all().delete()
    path = tmp_path / "Master.csv"
    path.write_text("".join(line.rsplit(",", 2)[0] + "\n" for line in _fixture_lines()))

    out, err = ingest("ingest_cdr", path, time_zone="UTC")

    assert "736 lines read, 736 new, 0 already stored, 0 blank, 0 malformed" in out
    assert err == ""
    assert _stored() == with_uniqueids
    assert set(CdrRecord.objects.values_list("uniqueid", "userfield")) == {("", "")}


def test_17_columns_are_read_as_the_uniqueid_or_the_userfield_by_what_the_cell_holds(
    ingest, tmp_path
):
    first = _fixture_lines()[0]
    without_userfield = first.rsplit(",", 1)[0]  # loguniqueid = yes alone
    base = first.rsplit(",", 2)[0]
    path = tmp_path / "Master.csv"
    path.write_text(
        f'{without_userfield}\n{base.replace("04:13:34", "04:13:35")},"ticket-88"\n'
        f'{base.replace("04:13:34", "04:13:36")},"srv1-1655439214.7"\n'
    )

    out, _ = ingest("ingest_cdr", path, time_zone="UTC")

    assert "3 lines read, 3 new" in out
    assert sorted(CdrRecord.objects.values_list("uniqueid", "userfield")) == [
        ("", "ticket-88"),
        ("1655439214.5", ""),
        ("srv1-1655439214.7", ""),  # asterisk.conf's systemname before the uniqueid
    ]


def test_19_columns_of_cdr_csv_with_newcdrcolumns_are_not_taken_for_cdr_custom(ingest, tmp_path):
    base = _fixture_lines()[1].rsplit(",", 2)[0]  # an answered call, without uniqueid/userfield
    path = tmp_path / "Master.csv"
    path.write_text(f'{base},"","1655439303.11",4\n{_fixture_lines()[1]},"","1655439303.11",4,9\n')

    out, err = ingest("ingest_cdr", path, time_zone="UTC")

    assert "2 lines read, 1 new, 0 already stored, 0 blank, 1 malformed" in out
    row = CdrRecord.objects.get()
    assert (row.src, row.dst, row.disposition, row.linkedid, row.sequence) == (
        "1001",
        "1002",
        "ANSWERED",
        "1655439303.11",
        "4",
    )
    assert row.calldate == datetime(2022, 6, 17, 4, 15, 3, tzinfo=UTC)
    assert "line 2: 22 columns; 16 to 21 (cdr_csv) or 19 (cdr_custom) expected" in err


def _load_dump(path, database):
    """The phpMyAdmin dump's INSERT rows into a SQLite `cdr` table."""
    text = path.read_text(encoding="utf-8")
    columns = re.search(r"INSERT INTO `cdr` \(([^)]*)\) VALUES", text).group(1).replace("`", "")
    connection = ConnectionHandler(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)},
            "cdr": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)},
        }
    )["cdr"]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE cdr ({columns})")
        for values in re.findall(r"^\((\d+, .*)\)[,;]$", text, re.MULTILINE):
            cursor.execute(f"INSERT INTO cdr VALUES ({values})")
    return connection


def test_the_cdr_table_is_read_by_id_and_only_once(tmp_path):
    connection = _load_dump(
        fixtures_path("cdr", "cdr_mysql_dump_freepbxstyle_aleksa5324.sql"), tmp_path / "cdr.sqlite3"
    )
    ingest = TableIngest(
        connection=connection, table="cdr", time_zone=cdr_time_zone("UTC"), batch_size=10
    )

    report = ingest.run()

    # 31 rows; row 1 is all empty with calldate 0000-00-00 00:00:00.
    assert (report.lines, report.added, report.malformed_count) == (31, 30, 1)
    assert report.malformed[0][:2] == (1, "no start time")
    row = CdrRecord.objects.get(uniqueid="1495543108.0")
    assert row.calldate == datetime(2017, 5, 23, 15, 38, 28, tzinfo=UTC)
    assert (row.amaflags, row.answer, row.billsec) == ("DOCUMENTATION", None, 9)

    again = TableIngest(connection=connection, table="cdr", time_zone=cdr_time_zone("UTC")).run()
    assert (again.lines, again.added) == (0, 0)
    connection.close()


def test_a_table_without_id_is_reread_with_a_lookback_and_adds_nothing(tmp_path):
    connection = _load_dump(
        fixtures_path("cdr", "cdr_mysql_dump_freepbxstyle_aleksa5324.sql"), tmp_path / "cdr.sqlite3"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE cdr2 AS SELECT calldate, clid, src, dst, channel, dstchannel, "
            "lastapp, duration, billsec, disposition, uniqueid FROM cdr"
        )
    first = TableIngest(connection=connection, table="cdr2", time_zone=cdr_time_zone("UTC")).run()
    second = TableIngest(connection=connection, table="cdr2", time_zone=cdr_time_zone("UTC")).run()
    assert first.added == 30
    assert second.added == 0
    assert second.lines >= 1
    connection.close()


def test_ingest_cdr_needs_a_path_or_a_database(ingest, tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Give the PATH of the CDR file"):
        ingest("ingest_cdr")
    with pytest.raises(CommandError, match="is not a file"):
        ingest("ingest_cdr", tmp_path / "nope")
    with pytest.raises(CommandError, match="CDR_DATABASE_URL"):
        ingest("ingest_cdr", database="cdr")


def test_the_same_calls_from_the_file_in_utc_and_the_table_in_local_time_are_stored_once(
    ingest, tmp_path
):
    """FORMATS.md: the file of this system is in UTC (usegmtime), its CDR table in local time."""
    ingest("ingest_cdr", fixtures_path(*SYNKBUG), time_zone="UTC")
    stored = CdrRecord.objects.count()
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "cdr.sqlite3")}
    connection = ConnectionHandler({"default": database, "cdr": database})["cdr"]
    columns = ["calldate", "src", "dst", "dcontext", "clid", "channel", "dstchannel"]
    columns += ["lastapp", "lastdata", "duration", "billsec", "disposition", "amaflags"]
    columns += ["accountcode", "uniqueid", "userfield"]
    with (
        fixtures_path(*SYNKBUG).open(newline="", encoding="utf-8") as handle,
        connection.cursor() as cursor,
    ):
        cursor.execute(f"CREATE TABLE cdr ({', '.join(columns)})")
        for cells in csv.reader(handle):
            (account, src, dst, context, clid, channel, dstchannel, app, data, start) = cells[:10]
            *_, duration, billsec, disposition, amaflags, uniqueid, userfield = cells
            # June in New York: UTC-4.
            local = datetime.fromisoformat(start) - timedelta(hours=4)
            row = [local.isoformat(" "), src, dst, context, clid, channel, dstchannel, app]
            row += [data, duration, billsec, disposition, amaflags, account, uniqueid, userfield]
            cursor.execute(f"INSERT INTO cdr VALUES ({', '.join(['%s'] * len(columns))})", row)

    report = TableIngest(
        connection=connection, table="cdr", time_zone=cdr_time_zone("America/New_York")
    ).run()

    assert (report.lines, report.added) == (stored, 0)
    assert CdrRecord.objects.count() == stored
    connection.close()
