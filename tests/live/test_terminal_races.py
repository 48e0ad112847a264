"""terminal-register POST and DELETE of one terminal at once: one after the other, each on what
the one before stored, so the stored flag always says what the PBX did."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from pbx.gateway import PbxActionFailed
from pbx.models import Queue, QueueMember
from terminals.models import Terminal
from terminals.services import terminal_register, terminal_unregister

MAC = "aabbccddeeff"


class MembershipPbx:
    """A PBX double that keeps its members and refuses what Asterisk refuses."""

    def __init__(self):
        self.members: set[tuple[str, str]] = set()
        self.steps: list[str] = []
        self.adding = threading.Event()  # set once a QueueAdd has started
        self.go_on = threading.Event()
        self.go_on.set()

    def queue_add(self, *, queue, interface, member_name, state_interface):
        self.adding.set()
        assert self.go_on.wait(30)
        if (queue, interface) in self.members:
            raise PbxActionFailed("QueueAdd", "Unable to add interface: Already there")
        self.members.add((queue, interface))
        self.steps.append(f"add {queue}")

    def queue_remove(self, *, queue, interface):
        if (queue, interface) not in self.members:
            raise PbxActionFailed("QueueRemove", "Unable to remove interface: Not there")
        self.members.discard((queue, interface))
        self.steps.append(f"remove {queue}")


@pytest.fixture
def terminal(company, make_user):
    user = make_user(company, "201", "Ana")
    QueueMember.objects.create(
        queue=Queue.objects.create(company=company, name="ventas"), user=user
    )
    Terminal.objects.create(mac=MAC, user=user, interface="PJSIP/201")


def _loaded() -> Terminal:
    return Terminal.objects.select_related("user__company").get(mac=MAC)


@pytest.mark.django_db
@pytest.mark.parametrize("registered", [False, True], ids=["from-unregistered", "from-registered"])
def test_each_change_reads_what_the_one_before_stored(terminal, registered):
    """Both requests loaded the terminal before either stored (the second arrived during the
    first one's PBX calls): the second still acts on what the first stored."""
    Terminal.objects.filter(mac=MAC).update(registered=registered)
    pbx = MembershipPbx()
    if registered:
        pbx.members.add(("ventas", "PJSIP/201"))
    seen_by_post, seen_by_delete = _loaded(), _loaded()

    first, second = (
        (terminal_register, seen_by_post),
        (terminal_unregister, seen_by_delete),
    )
    if registered:
        first, second = second, first
    assert first[0](gateway=pbx, terminal=first[1]) is True
    assert second[0](gateway=pbx, terminal=second[1]) is True

    stored = Terminal.objects.get(mac=MAC)
    assert stored.registered is bool(pbx.members) is registered


def _an_advisory_lock_is_awaited(timeout: float = 20.0) -> bool:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as watcher:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                "AND datname = current_database()"
            ).fetchone()[0]:
                return True
            time.sleep(0.01)
    return False


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="an advisory lock: PostgreSQL")
def test_a_delete_during_a_post_waits_for_it_in_every_process(terminal):
    pbx = MembershipPbx()
    pbx.go_on.clear()
    answers: dict = {}

    def run(name, change):
        try:
            answers[name] = change(gateway=pbx, terminal=_loaded())
        except BaseException as exc:  # the test reads it
            answers[name] = exc
        finally:
            connections.close_all()

    post = threading.Thread(target=run, args=("post", terminal_register))
    post.start()
    assert pbx.adding.wait(20)  # the POST is inside its PBX calls
    delete = threading.Thread(target=run, args=("delete", terminal_unregister))
    delete.start()
    waited = _an_advisory_lock_is_awaited()
    pbx.go_on.set()
    post.join(30)
    delete.join(30)

    assert waited, "the DELETE did not wait for the POST"
    assert answers == {"post": True, "delete": True}
    assert pbx.steps == ["add ventas", "remove ventas"]
    assert Terminal.objects.get(mac=MAC).registered is False
    assert pbx.members == set()
