"""PostgreSQL: queue entries derived in one statement per chunk of calls, exactly as entries.derive does.

entries.derive is the reference; this is the same state machine written as window functions, so
that a million lines' entries are computed where the lines are instead of being sent to Python.
tests/history/test_entries_sql.py holds the two to the same results. A numeric field that is not
plain digits (a sign, spaces, "1_000", other scripts' digits: Python's int() reads all of them)
makes its call "irregular": such calls are left to entries.derive.

Every statement reads the lines of one PBX's files (`%(files)s`) and writes that PBX's entries
(`%(pbx)s`): a callid is a call on one PBX only.
"""

from __future__ import annotations

from pbx.models.history import ENTRY_EVENTS, QueueEntry, QueueLogLine

LINES = QueueLogLine._meta.db_table
ENTRIES = QueueEntry._meta.db_table
_ANSWERING = (
    "CONNECT",
    "COMPLETEAGENT",
    "COMPLETECALLER",
    "TRANSFER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
)
_COMPLETES = "('COMPLETEAGENT', 'COMPLETECALLER')"
_TRANSFERS = "('TRANSFER', 'BLINDTRANSFER', 'ATTENDEDTRANSFER')"
_EXITS = "('ABANDON', 'EXITWITHTIMEOUT', 'EXITWITHKEY', 'EXITEMPTY')"


# The PBX's files filter the rows the entry-key index finds. `+ 0` keeps the planner from
# reading whole files by the (file, number) key instead: one file holds ~all lines, and it did
# (5 times slower ingest on benchmarks/ingest_queue_log.py).
_OF_THE_PBX = "file_id + 0 = ANY(%(files)s::bigint[])"


def _sql_list(values) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def _digits(field: str) -> str:
    # ltrim is much cheaper than a regular expression, and this runs for every line.
    return f"(ltrim({field}, '0123456789') = '' AND octet_length({field}) <= 18)"


def _int(field: str) -> str:
    """entries._int for plain digits: the value; anything else is None (irregular ones aside)."""
    return f"(CASE WHEN {field} <> '' AND {_digits(field)} THEN ({field})::bigint END)"


def _irregular(field: str) -> str:
    """True unless int() is sure to agree: empty, plain digits, a negative, or no digit at all."""
    return (
        f"(NOT {_digits(field)} AND {field} !~ '^(-[0-9]*[1-9][0-9]*|[\\x01-\\x2f\\x3a-\\x7f]*)$')"
    )


def _field(n: int) -> str:
    return f"split_part(data, '|', {n})"


# TRANSFER lines end with hold|talk|position when they have 5 fields or more, else hold is the 3rd.
_LONG = "data LIKE '%%|%%|%%|%%|%%'"
_HOLD = (
    f"CASE WHEN event IN {_COMPLETES} THEN {_int(_field(1))} "
    f"WHEN event IN {_TRANSFERS} THEN CASE WHEN {_LONG} THEN {_int(_field(-3))} "
    f"ELSE {_int(_field(3))} END END"
)
_TALK = (
    f"CASE WHEN event IN {_COMPLETES} THEN {_int(_field(2))} "
    f"WHEN event IN {_TRANSFERS} THEN CASE WHEN {_LONG} THEN {_int(_field(-2))} "
    f"ELSE {_int(_field(4))} END END"
)
_EXIT_WAIT = f"CASE WHEN event = 'EXITWITHKEY' THEN {_int(_field(4))} ELSE {_int(_field(3))} END"
_LINE_IRREGULAR = (
    f"CASE WHEN event = 'CONNECT' THEN {_irregular(_field(1))} "
    f"WHEN event IN {_COMPLETES} THEN {_irregular(_field(1))} OR {_irregular(_field(2))} "
    f"WHEN event IN {_TRANSFERS} THEN CASE WHEN {_LONG} "
    f"THEN {_irregular(_field(-3))} OR {_irregular(_field(-2))} "
    f"ELSE {_irregular(_field(3))} OR {_irregular(_field(4))} END "
    f"WHEN event = 'EXITWITHKEY' THEN {_irregular(_field(4))} "
    f"WHEN event IN {_EXITS} THEN {_irregular(_field(3))} ELSE false END"
)
_ORDER = '"time", rank, file_id, number'

# The lines of these calls, sorted as derive sorts them. A draft (an entry in the making) starts
# at the first line; at an ENTERQUEUE or CONNECT after an exit line; at an ENTERQUEUE whose time
# differs from the previous ENTERQUEUE since the last exit. An exit line right after another one
# is skipped. Each draft then takes its first ENTERQUEUE, its last CONNECT and its exit line.
_DRAFTS = f"""
WITH l AS (
    SELECT callid, queue_name, "time", agent, event, data, file_id, number,
           CASE event WHEN 'ENTERQUEUE' THEN 0 WHEN 'CONNECT' THEN 1 ELSE 2 END AS rank,
           event NOT IN ('ENTERQUEUE', 'CONNECT') AS final
    FROM {LINES}
    WHERE callid = ANY(%(callids)s) AND event IN {_sql_list(ENTRY_EVENTS)}
          AND {_OF_THE_PBX}
), o AS (
    SELECT *, lag(final) OVER before AS prev_final,  -- lag ignores the frame: one pass
           max("time") FILTER (WHERE event = 'ENTERQUEUE') OVER before AS last_enter,
           max("time") FILTER (WHERE final) OVER before AS last_final
    FROM l
    WINDOW before AS (PARTITION BY callid, queue_name ORDER BY {_ORDER}
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), b AS MATERIALIZED (
    SELECT *, sum((prev_final IS NULL OR (NOT final AND prev_final)
                   OR (event = 'ENTERQUEUE' AND NOT prev_final AND last_enter <> "time"
                       AND (last_final IS NULL OR last_enter > last_final)))::int)
              OVER (PARTITION BY callid, queue_name ORDER BY {_ORDER}) AS draft
    FROM o
    WHERE NOT (final AND coalesce(prev_final, false))
), heads AS (
    SELECT callid, queue_name, draft, min("time") FILTER (WHERE event = 'ENTERQUEUE') AS entered_at,
           min("time") AS first_time
    FROM b GROUP BY callid, queue_name, draft
), callers AS (
    SELECT DISTINCT ON (callid, queue_name, draft) callid, queue_name, draft, {_field(2)} AS caller
    FROM b WHERE event = 'ENTERQUEUE' AND {_field(2)} <> ''
    ORDER BY callid, queue_name, draft, {_ORDER}
), connects AS (
    SELECT DISTINCT ON (callid, queue_name, draft) callid, queue_name, draft,
           "time" AS c_time, agent AS c_agent, {_int(_field(1))} AS c_wait
    FROM b WHERE event = 'CONNECT'
    ORDER BY callid, queue_name, draft, "time" DESC, file_id DESC, number DESC
), finals AS (
    SELECT callid, queue_name, draft, "time" AS f_time, agent AS f_agent, event AS f_event,
           {_HOLD} AS hold, {_TALK} AS f_talk, {_EXIT_WAIT} AS exit_wait
    FROM b WHERE final
), s AS (
    SELECT h.callid, h.queue_name, h.draft, h.entered_at, h.first_time,
           coalesce(ca.caller, '') AS caller, f.f_time AS ended_at,
           CASE WHEN f.f_event IN {_COMPLETES} THEN 'answered'
                WHEN f.f_event IN {_TRANSFERS} THEN 'transferred'
                WHEN f.f_event = 'ABANDON' THEN 'abandoned'
                WHEN f.f_event = 'EXITWITHTIMEOUT' THEN 'timeout'
                WHEN f.f_event = 'EXITEMPTY' THEN 'empty'
                WHEN f.f_event = 'EXITWITHKEY' THEN 'key_press'
                WHEN c.c_time IS NOT NULL THEN 'answered' ELSE 'waiting' END AS outcome,
           CASE WHEN f.f_event IN {_EXITS} THEN f.exit_wait
                WHEN f.f_event IS NOT NULL THEN coalesce(c.c_wait, f.hold)
                ELSE c.c_wait END AS wait,
           CASE WHEN f.f_event IN {_COMPLETES} OR f.f_event IN {_TRANSFERS}
                THEN coalesce(f.f_talk, 0) ELSE 0 END AS talk,
           CASE WHEN c.c_time IS NOT NULL THEN c.c_time
                WHEN f.f_event IN {_COMPLETES} OR f.f_event IN {_TRANSFERS}
                THEN f.f_time - make_interval(secs => coalesce(f.f_talk, 0)) END AS answered_at,
           CASE WHEN coalesce(c.c_agent, '') <> '' THEN c.c_agent
                WHEN f.f_event IN {_COMPLETES} OR f.f_event IN {_TRANSFERS} THEN f.f_agent
                ELSE coalesce(c.c_agent, '') END AS agent
    FROM heads h
    LEFT JOIN callers ca USING (callid, queue_name, draft)
    LEFT JOIN connects c USING (callid, queue_name, draft)
    LEFT JOIN finals f USING (callid, queue_name, draft)
), w AS (
    SELECT *, coalesce(wait, CASE WHEN coalesce(answered_at, ended_at) IS NULL THEN 0
              ELSE greatest(0, trunc(extract(epoch FROM coalesce(answered_at, ended_at)
                   - coalesce(entered_at, answered_at, ended_at - make_interval(secs => talk),
                              first_time))))::bigint END) AS wait_final
    FROM s
), e AS (
    SELECT DISTINCT ON (callid, queue_name, start)
           callid, queue_name, left(caller, 80) AS caller, start, answered_at, ended_at, outcome,
           wait_final, talk,
           CASE WHEN outcome IN ('answered', 'transferred') THEN agent ELSE '' END AS agent
    FROM (
        SELECT *, coalesce(entered_at, answered_at - make_interval(secs => wait_final),
                           ended_at - make_interval(secs => wait_final + talk), first_time) AS start
        FROM w
    ) AS started
    ORDER BY callid, queue_name, start, draft DESC
)"""

# Every (agent, queue) that may become an entry's agent: the user is matched in Python.
AGENTS = (
    f"SELECT DISTINCT agent, queue_name FROM {LINES} WHERE callid = ANY(%(callids)s) "
    f"AND event IN {_sql_list(_ANSWERING)} AND agent <> '' AND {_OF_THE_PBX}"
)

DELETE = f"DELETE FROM {ENTRIES} WHERE pbx = %(pbx)s AND callid = ANY(%(callids)s)"

INSERT = f"""{_DRAFTS}, irregular AS (
    SELECT DISTINCT callid FROM b WHERE event NOT IN ('ENTERQUEUE') AND {_LINE_IRREGULAR}
), added AS (
    INSERT INTO {ENTRIES} (pbx, callid, queue_name, queue_id, company_id, caller, entered_at,
                           answered_at, ended_at, outcome, wait_seconds, talk_seconds, agent,
                           agent_user_id)
    SELECT %(pbx)s, e.callid, e.queue_name, q.queue_id, q.company_id, e.caller, e.start, e.answered_at,
           e.ended_at, e.outcome, e.wait_final, e.talk, e.agent, m.user_id
    FROM e
    LEFT JOIN unnest(%(queue_names)s::text[], %(queue_ids)s::bigint[], %(company_ids)s::bigint[])
        AS q(name, queue_id, company_id) ON q.name = e.queue_name
    LEFT JOIN unnest(%(agents)s::text[], %(agent_queues)s::text[], %(user_ids)s::bigint[])
        AS m(agent, queue_name, user_id) ON m.agent = e.agent AND m.queue_name = e.queue_name
    WHERE e.callid NOT IN (SELECT callid FROM irregular)
    RETURNING 1
)
SELECT (SELECT count(*) FROM added), (SELECT array_agg(callid) FROM irregular)"""
