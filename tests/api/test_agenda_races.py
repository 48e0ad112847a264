"""Two writers of one agenda at once, on PostgreSQL (READ COMMITTED): the second waits for the
first and then writes on what the first committed. Never a 500.

Deterministic, not a timing race: the first writer stores its phones and keeps its transaction
open until PostgreSQL shows the second one waiting for a lock; only then does it commit. SQLite
needs no such test: its writers take the database's write lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection, connections

import agenda.services as services
from agenda.models import Agenda, AgendaPhone

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'", reason="READ COMMITTED's races: PostgreSQL only"
    ),
]
WAIT_FOR_WAITER = 20.0


def _someone_waits_for_a_lock() -> bool:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as watcher:
        deadline = time.monotonic() + WAIT_FOR_WAITER
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()[0]
            if waiting:
                return True
            time.sleep(0.01)
    return False


class FirstWriterHolds:
    """Wraps phones_merge: the first call stores its phones, says so, and returns (so that its
    transaction commits) only once another writer waits for one of its locks."""

    def __init__(self, monkeypatch):
        self.merged = threading.Event()
        self.saw_a_waiter: list[bool] = []
        self._real = services.phones_merge
        self._first = threading.Lock()
        monkeypatch.setattr(services, "phones_merge", self)

    def __call__(self, *args, **kwargs):
        result = self._real(*args, **kwargs)
        if self._first.acquire(blocking=False):
            self.merged.set()
            self.saw_a_waiter.append(_someone_waits_for_a_lock())
        return result


def _in_thread(work, answers: dict, name: str) -> threading.Thread:
    def run():
        try:
            answers[name] = work()
        except BaseException as exc:  # the test reads it
            answers[name] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _update(client, name: str, *numbers: str):
    phones = [{"name": f"Phone {n}", "number": n} for n in numbers]
    return client.post("/update-agenda", {"name": name, "phones": phones}, format="json")


def _first_then_second(monkeypatch, first, second) -> dict:
    holds = FirstWriterHolds(monkeypatch)
    answers: dict = {}
    one = _in_thread(first, answers, "first")
    assert holds.merged.wait(WAIT_FOR_WAITER), answers
    two = _in_thread(second, answers, "second")
    one.join(2 * WAIT_FOR_WAITER)
    two.join(2 * WAIT_FOR_WAITER)
    assert holds.saw_a_waiter == [True], "the second writer never waited for the first"
    return answers


@pytest.mark.parametrize("stored", [[], ["111"]], ids=["empty", "with-a-phone"])
def test_two_updates_adding_the_same_new_number_both_succeed(monkeypatch, api, stored):
    agenda = Agenda.objects.create(name="clientes")
    for number in stored:
        AgendaPhone.objects.create(agenda=agenda, name="Old", number=number)

    answers = _first_then_second(
        monkeypatch,
        lambda: _update(api, "clientes", "600", "601"),
        lambda: _update(api, "clientes", "600", "602"),
    )

    assert [answers[k].status_code for k in ("first", "second")] == [200, 200], answers
    expected = {**dict.fromkeys(stored, "Old"), **{n: f"Phone {n}" for n in ("600", "601", "602")}}
    assert dict(AgendaPhone.objects.values_list("number", "name")) == expected


def test_two_updates_creating_the_same_agenda_both_write_into_it(monkeypatch, api):
    answers = _first_then_second(
        monkeypatch,
        lambda: _update(api, "nueva", "600"),
        lambda: _update(api, "nueva", "700"),
    )

    assert [answers[k].status_code for k in ("first", "second")] == [200, 200], answers
    assert Agenda.objects.get().name == "nueva"
    assert set(AgendaPhone.objects.values_list("number", flat=True)) == {"600", "700"}


def test_a_concurrent_creation_of_another_companys_agenda_is_a_409(
    monkeypatch, api_for, make_company
):
    mine, theirs = make_company(slug="mine", name="Mine"), make_company(slug="theirs", name="T")

    answers = _first_then_second(
        monkeypatch,
        lambda: _update(api_for(theirs), "nueva", "600"),
        lambda: _update(api_for(mine), "nueva", "700"),
    )

    assert answers["first"].status_code == 200
    assert answers["second"].status_code == 409, answers["second"].content
    assert "'nueva'" in answers["second"].json()["error-msg"]  # taken, as any name in use
    assert set(AgendaPhone.objects.values_list("number", flat=True)) == {"600"}


@pytest.mark.parametrize("import_first", [True, False], ids=["import-first", "api-first"])
def test_the_admins_csv_import_and_an_update_of_the_same_number_both_succeed(
    monkeypatch, api, import_first
):
    Agenda.objects.create(name="clientes")

    def imports():
        return services.agendas_import({"clientes": {"600": "From CSV"}})

    def updates():
        return _update(api, "clientes", "600")

    first, second = (imports, updates) if import_first else (updates, imports)
    answers = _first_then_second(monkeypatch, first, second)

    api_answer = answers["second" if import_first else "first"]
    imported = answers["first" if import_first else "second"]
    assert api_answer.status_code == 200, api_answer.content
    assert isinstance(imported, services.AgendasImported), imported
    assert AgendaPhone.objects.get().number == "600"
