"""Directory import of PBXes: companies on several PBXes, names unique per PBX, moving PBX."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pbx.directory.loading import DirectoryError, directory_load
from pbx.models import Company, Pbx, PbxUser, Queue, QueueMember
from terminals.models import Terminal

MODELS = (Pbx, Company, Queue, PbxUser, QueueMember, Terminal)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "directory.md"

PBX_A = {
    "name": "pbx-a",
    "host": "10.0.0.5",
    "port": 5038,
    "username": "swan",
    "secret_env": "SWAN_PBX_A_SECRET",
    "queue_log": "/var/log/asterisk/queue_log",
    "cdr_csv": "/var/log/asterisk/cdr-csv/Master.csv",
    "dial_context": "from-internal",
}
DOCUMENT: dict[str, Any] = {
    "pbxes": [
        PBX_A,
        {
            "name": "pbx-b",
            "host": "pbx-b.example.net",
            "username": "swan-b",
            "secret_env": "SWAN_PBX_B",
        },
    ],
    "companies": [
        {
            "slug": "onfarma",
            "name": "ONFARMA",
            "pbx": "pbx-a",
            "queues": [{"name": "q-ventas"}, {"name": "q-soporte"}],
            "users": [{"extension": "201", "name": "Ana", "queues": ["q-ventas"]}],
        },
        {
            "slug": "acme",
            "name": "Acme",
            "pbx": "pbx-b",
            "queues": [{"name": "q-ventas"}],
            "users": [{"extension": "201", "name": "Luis", "queues": ["q-ventas"]}],
        },
    ],
}


def document() -> dict[str, Any]:
    return copy.deepcopy(DOCUMENT)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def queue_pbxes() -> set[tuple[str, str, str]]:
    return set(Queue.objects.values_list("company__slug", "name", "pbx"))


def load_errors(doc: dict[str, Any]) -> list[str]:
    before = snapshot()
    with pytest.raises(DirectoryError) as caught:
        directory_load(doc)
    assert snapshot() == before
    return caught.value.errors


@pytest.mark.django_db
def test_it_creates_pbxes_and_puts_companies_on_them():
    report = directory_load(document())

    assert (report.pbxes.created, report.companies.created, report.queues.created) == (2, 2, 3)
    a = Pbx.objects.get(name="pbx-a")
    assert {f: getattr(a, f) for f in PBX_A} == PBX_A
    b = Pbx.objects.get(name="pbx-b")
    # Left out: the model's defaults.
    assert (b.port, b.queue_log, b.cdr_csv, b.dial_context) == (5038, "", "", "from-internal")
    assert dict(Company.objects.values_list("slug", "pbx")) == {"onfarma": "pbx-a", "acme": "pbx-b"}
    assert queue_pbxes() == {
        ("onfarma", "q-ventas", "pbx-a"),
        ("onfarma", "q-soporte", "pbx-a"),
        ("acme", "q-ventas", "pbx-b"),
    }
    # Each company's user is in its own company's q-ventas.
    assert set(QueueMember.objects.values_list("queue__company__slug", "user__company__slug")) == {
        ("onfarma", "onfarma"),
        ("acme", "acme"),
    }
    assert "pbxes: 2 created, 0 updated, 0 unchanged" in str(report)


@pytest.mark.django_db
def test_a_second_load_writes_nothing():
    directory_load(document())
    before = snapshot()

    with CaptureQueriesContext(connection) as queries:
        report = directory_load(document())

    assert not report.changed
    assert (report.pbxes.unchanged, report.queues.unchanged) == (2, 3)
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE")]
    assert writes == []
    assert snapshot() == before


@pytest.mark.django_db
def test_it_updates_a_pbx_and_keeps_what_the_file_leaves_out():
    directory_load(document())
    Pbx.objects.filter(name="pbx-b").update(cdr_csv="/data/b/Master.csv", port=5039)
    doc = document()
    doc["pbxes"][0].update(host="10.0.0.6", queue_log=None)

    report = directory_load(doc)

    assert (report.pbxes.updated, report.pbxes.unchanged) == (1, 1)
    a = Pbx.objects.get(name="pbx-a")
    assert (a.host, a.queue_log) == ("10.0.0.6", "")
    b = Pbx.objects.get(name="pbx-b")
    assert (b.cdr_csv, b.port) == ("/data/b/Master.csv", 5039)


@pytest.mark.django_db
def test_a_company_may_name_a_pbx_already_in_the_database():
    directory_load(document())
    doc = {"companies": [{"slug": "tres", "name": "Tres", "pbx": "pbx-b"}]}

    directory_load(doc)

    assert Company.objects.get(slug="tres").pbx_key == "pbx-b"


@pytest.mark.django_db
def test_a_company_without_pbx_is_on_the_default_one_and_keeps_its_pbx_on_update():
    directory_load(document())
    doc = document()
    del doc["companies"][0]["pbx"]
    doc["companies"].append({"slug": "nueva", "name": "Nueva"})

    report = directory_load(doc)

    assert report.companies.unchanged == 2
    assert Company.objects.get(slug="onfarma").pbx_key == "pbx-a"
    assert Company.objects.get(slug="nueva").pbx_key == "default"


@pytest.mark.django_db
@pytest.mark.parametrize("value", [None, "default"])
def test_null_or_default_puts_a_company_back_on_the_settings_pbx(value):
    directory_load(document())
    doc = document()
    doc["companies"][0]["pbx"] = value

    directory_load(doc)

    onfarma = Company.objects.get(slug="onfarma")
    assert (onfarma.pbx_id, onfarma.pbx_key) == (None, "default")
    assert {q.pbx for q in Queue.objects.filter(company=onfarma)} == {"default"}


@pytest.mark.django_db
def test_an_empty_dial_context_falls_back_to_the_pbx_default():
    doc = document()
    doc["companies"][0]["dial_context"] = "onfarma-out"
    directory_load(doc)
    assert Company.objects.get(slug="onfarma").dial_context == "onfarma-out"

    doc["companies"][0]["dial_context"] = None
    directory_load(doc)

    assert Company.objects.get(slug="onfarma").dial_context == ""


def _set_pbx(key: str, value: Any):
    def mutate(doc: dict[str, Any]) -> None:
        if value == "-":
            del doc["pbxes"][0][key]
        else:
            doc["pbxes"][0][key] = value

    return mutate


P0 = "pbxes[0] (pbx-a)"

INVALID = [
    pytest.param(
        lambda doc: doc.update(pbxes={"name": "pbx-a"}),
        "the document: pbxes must be a list",
        id="not-a-list",
    ),
    pytest.param(
        lambda doc: doc["pbxes"].append("pbx-c"), "pbxes[2]: must be an object", id="not-object"
    ),
    pytest.param(
        _set_pbx("hots", "x"), f"{P0}: unknown key 'hots' (did you mean 'host'?)", id="key"
    ),
    pytest.param(
        _set_pbx("secret", "s3cr3t"),
        f"{P0}: secret: the AMI secret is never written in the file; put it in an environment "
        "variable and name that variable in secret_env",
        id="secret",
    ),
    pytest.param(_set_pbx("name", "-"), "pbxes[0]: name is required", id="no-name"),
    pytest.param(
        _set_pbx("name", "PBX A"),
        "pbxes[0] (PBX A): name must be lower-case letters, digits, - and _",
        id="name",
    ),
    pytest.param(
        _set_pbx("name", "default"),
        "pbxes[0] (default): name 'default' is the PBX of the settings (AMI_HOST…): choose "
        "another name",
        id="default-name",
    ),
    pytest.param(_set_pbx("host", "-"), f"{P0}: host is required", id="no-host"),
    pytest.param(_set_pbx("host", " "), f"{P0}: host must not be empty", id="blank-host"),
    pytest.param(
        _set_pbx("host", "10.0.0.5 x"), f"{P0}: host must not contain blanks", id="host-blank"
    ),
    pytest.param(
        _set_pbx("host", "10.0.0.5\r\n"), f"{P0}: host contains control characters", id="host-cc"
    ),
    pytest.param(_set_pbx("username", "-"), f"{P0}: username is required", id="no-username"),
    pytest.param(
        _set_pbx("username", "swan\x00"),
        f"{P0}: username contains control characters",
        id="username-cc",
    ),
    pytest.param(_set_pbx("username", 7), f"{P0}: username must be a text", id="username-type"),
    *(
        pytest.param(
            _set_pbx("port", port),
            f"{P0}: port must be a whole number from 1 to 65535",
            id=f"port-{port}",
        )
        for port in (0, 65536, "5038", True, 50.5)
    ),
    pytest.param(_set_pbx("secret_env", "-"), f"{P0}: secret_env is required", id="no-env"),
    *(
        pytest.param(
            _set_pbx("secret_env", name),
            f"{P0}: secret_env must be an environment variable name that starts with SWAN_PBX_",
            id=f"env-{name}",
        )
        for name in (
            "swan_secret",
            "1SECRET",
            "SWAN-SECRET",
            "SWAN SECRET",
            "DATABASE_URL",
            "SECRET_KEY",
            "SWAN_PBX_",
            "swan_pbx_a",
        )
    ),
    pytest.param(
        _set_pbx("queue_log", "/var/log/queue_log\n"),
        f"{P0}: queue_log contains control characters",
        id="queue-log",
    ),
    pytest.param(_set_pbx("cdr_csv", ["a"]), f"{P0}: cdr_csv must be a text", id="cdr-csv"),
    pytest.param(
        _set_pbx("dial_context", "from internal"),
        f"{P0}: dial_context must not contain blanks",
        id="dial-context",
    ),
    pytest.param(
        lambda doc: doc["pbxes"][1].update(name="pbx-a"),
        f"pbxes[1] (pbx-a): PBX pbx-a is listed twice (also {P0})",
        id="duplicate",
    ),
    pytest.param(
        lambda doc: doc["companies"][0].update(pbx="PBX A"),
        "companies[0] (onfarma): pbx 'PBX A' is not a PBX name",
        id="company-pbx",
    ),
    pytest.param(
        lambda doc: doc["companies"][0].update(pbx="pbx-c"),
        "companies[0] (onfarma): pbx 'pbx-c' is neither in the file's pbxes nor in the database",
        id="unknown-pbx",
    ),
    pytest.param(
        lambda doc: doc["companies"][0]["queues"].append({"name": "q-ventas"}),
        "companies[0] (onfarma) queues[2] (q-ventas): queue q-ventas is listed twice (also "
        "companies[0] (onfarma) queues[0] (q-ventas))",
        id="queue-twice-in-company",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("mutate", "message"), INVALID)
def test_it_rejects_a_bad_pbx_naming_it_and_writes_nothing(mutate, message):
    directory_load({"pbxes": [PBX_A], "companies": [{"slug": "other", "name": "Other"}]})
    doc = document()
    mutate(doc)

    errors = load_errors(doc)

    assert any(error.startswith(message) for error in errors), errors


@pytest.mark.django_db
def test_the_same_queue_extension_and_device_on_two_pbxes_are_two_of_them():
    doc = document()
    # Both companies' 201 have the default device PJSIP/201, on their own PBX.
    for company in doc["companies"]:
        company["users"][0]["terminals"] = [{"mac": f"00156500000{len(company['slug'])}"}]

    directory_load(doc)

    assert set(Terminal.objects.values_list("user__company__slug", "interface")) == {
        ("onfarma", "PJSIP/201"),
        ("acme", "PJSIP/201"),
    }
    assert not directory_load(doc).changed


@pytest.mark.django_db
def test_it_refuses_a_queue_name_twice_on_one_pbx_in_the_file():
    doc = document()
    doc["companies"][1]["pbx"] = "pbx-a"

    assert load_errors(doc) == [
        "companies[1] (acme) queues[0] (q-ventas): queue q-ventas is listed twice on PBX 'pbx-a' "
        "(also companies[0] (onfarma) queues[0] (q-ventas))"
    ]


@pytest.mark.django_db
def test_it_refuses_a_device_twice_on_one_pbx_in_the_file():
    doc = document()
    doc["companies"][1]["pbx"] = "pbx-a"
    doc["companies"][1]["queues"] = [{"name": "q-acme"}]
    doc["companies"][1]["users"][0]["queues"] = ["q-acme"]
    doc["companies"][0]["users"][0]["terminals"] = [{"mac": "001565000001"}]
    doc["companies"][1]["users"][0]["terminals"] = [{"mac": "001565000002"}]

    assert load_errors(doc) == [
        "companies[1] (acme) users[0] (extension 201) terminals[0] (001565000002): interface "
        "PJSIP/201 is also used by company 'onfarma' (companies[0] (onfarma) users[0] (extension "
        "201) terminals[0] (001565000001)); a device belongs to one company"
    ]


@pytest.fixture
def stored_on_b(db, make_company, make_user, make_queue):
    """A company outside the file, on pbx-b, with a queue q-ventas and a device PJSIP/201."""
    directory_load({"pbxes": DOCUMENT["pbxes"], "companies": []})
    company = make_company(slug="other", name="Other", pbx_id="pbx-b")
    make_queue(company, "q-ventas")
    make_user(company, "201")
    return company


@pytest.mark.django_db
def test_it_refuses_a_queue_another_company_has_on_the_same_pbx(stored_on_b):
    assert load_errors(document()) == [
        "companies[1] (acme) queues[0] (q-ventas): queue q-ventas already belongs to company "
        "'other' on PBX 'pbx-b'"
    ]


@pytest.mark.django_db
def test_it_refuses_a_device_another_company_has_on_the_same_pbx(stored_on_b):
    doc = document()
    doc["companies"][1]["queues"] = []
    doc["companies"][1]["users"][0].update(queues=[], terminals=[{"mac": "001565000002"}])

    assert load_errors(doc) == [
        "companies[1] (acme) users[0] (extension 201) terminals[0] (001565000002): interface "
        "PJSIP/201 already belongs to a terminal of company 'other'; a device belongs to one "
        "company"
    ]


@pytest.mark.django_db
def test_a_queue_and_a_device_of_another_pbx_do_not_clash(stored_on_b):
    doc = document()
    doc["companies"] = doc["companies"][:1]  # onfarma, on pbx-a
    doc["companies"][0]["users"][0]["terminals"] = [{"mac": "001565000001"}]

    directory_load(doc)

    assert ("onfarma", "q-ventas", "pbx-a") in queue_pbxes()


@pytest.fixture
def on_a(db, make_queue):
    """onfarma on pbx-a with q-ventas, q-soporte and a queue that the file does not list."""
    directory_load(document())
    onfarma = Company.objects.get(slug="onfarma")
    make_queue(onfarma, "q-admin")
    return onfarma


@pytest.mark.django_db
def test_a_company_that_moves_takes_all_its_queues_along(on_a):
    doc = document()
    doc["companies"][0]["pbx"] = None
    doc["companies"][0]["queues"] = [{"name": "q-ventas"}]  # q-soporte and q-admin are left out

    report = directory_load(doc)

    assert (report.companies.updated, report.queues.updated, report.queues.unchanged) == (1, 3, 1)
    assert {(name, pbx) for slug, name, pbx in queue_pbxes() if slug == "onfarma"} == {
        ("q-ventas", "default"),
        ("q-soporte", "default"),
        ("q-admin", "default"),
    }
    assert not directory_load(doc).changed


@pytest.mark.django_db
def test_two_companies_may_swap_pbxes_with_the_same_queue_names():
    directory_load(document())
    doc = document()
    doc["companies"][0]["pbx"], doc["companies"][1]["pbx"] = "pbx-b", "pbx-a"

    directory_load(doc)

    assert queue_pbxes() == {
        ("onfarma", "q-ventas", "pbx-b"),
        ("onfarma", "q-soporte", "pbx-b"),
        ("acme", "q-ventas", "pbx-a"),
    }


@pytest.mark.django_db
def test_a_move_onto_a_queue_name_of_the_target_pbx_is_refused(on_a, make_company, make_queue):
    other = make_company(slug="other", name="Other")  # on the default PBX
    make_queue(other, "q-admin")
    make_queue(other, "q-soporte")
    doc = document()
    doc["companies"] = doc["companies"][:1]
    doc["companies"][0]["pbx"] = None

    assert load_errors(doc) == [
        "companies[0] (onfarma) queues[1] (q-soporte): queue q-soporte already belongs to "
        "company 'other' on PBX 'default'",
        "companies[0] (onfarma): moving to PBX 'default', its queue q-admin clashes with queue "
        "q-admin of company 'other' there; a queue name is one queue on a PBX",
    ]


@pytest.mark.django_db
def test_a_move_onto_a_queue_name_another_company_of_the_file_lists_is_refused(on_a):
    doc = document()
    doc["companies"][0].update(pbx="pbx-b", queues=[])  # its stored queues move along
    doc["companies"][0]["users"][0]["queues"] = []
    doc["companies"][1]["queues"].append({"name": "q-admin"})

    assert load_errors(doc) == [
        "companies[0] (onfarma): moving to PBX 'pbx-b', its queue q-admin clashes with queue "
        "q-admin of company 'acme' there (companies[1] (acme) queues[1] (q-admin)); a queue name "
        "is one queue on a PBX",
        "companies[0] (onfarma): moving to PBX 'pbx-b', its queue q-ventas clashes with queue "
        "q-ventas of company 'acme' there (companies[1] (acme) queues[0] (q-ventas)); a queue "
        "name is one queue on a PBX",
    ]


@pytest.mark.django_db
def test_a_move_onto_a_device_of_the_target_pbx_is_refused(on_a, make_company, make_user):
    Pbx.objects.create(name="pbx-c", host="10.0.0.7", username="swan", secret_env="SWAN_PBX_C")
    make_user(make_company(slug="other", pbx_id="pbx-c"), "901", terminals=["X/1"])
    Terminal.objects.create(
        mac="001565000009", user=PbxUser.objects.get(company=on_a), interface="X/1"
    )
    doc = {"companies": [{"slug": "onfarma", "name": "ONFARMA", "pbx": "pbx-c"}]}

    assert load_errors(doc) == [
        "companies[0] (onfarma): moving to PBX 'pbx-c', its interface X/1 clashes with a "
        "terminal of company 'other' there; a device belongs to one company"
    ]


@pytest.mark.django_db
def test_the_command_reports_the_pbxes(tmp_path, capsys):
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(document()), encoding="utf-8")

    call_command("load_directory", str(path))

    assert "pbxes: 2 created, 0 updated, 0 unchanged" in capsys.readouterr().out


def _many(count: int) -> dict[str, Any]:
    doc = document()
    doc["companies"] = [
        {
            "slug": f"c{n}",
            "name": f"C{n}",
            "pbx": ("pbx-a", "pbx-b", None)[n % 3],
            "queues": [{"name": "q-ventas"}],
            "users": [{"extension": "201", "name": "Ana", "terminals": [{"mac": f"02{n:010x}"}]}],
        }
        for n in range(count)
    ]
    for n, company in enumerate(doc["companies"]):
        if n >= 3:  # one company per PBX has q-ventas and PJSIP/201
            company["queues"] = [{"name": f"q-{n}"}]
            company["users"][0]["terminals"][0]["interface"] = f"PJSIP/{n}"
    return doc


@pytest.mark.django_db
def test_the_queries_of_a_load_do_not_grow_with_the_companies():
    queries = []
    for count in (3, 30):
        doc = _many(count)
        directory_load(doc)
        with CaptureQueriesContext(connection) as captured:
            assert not directory_load(doc).changed
        queries.append(len(captured))

    assert queries[0] == queries[1]


@pytest.mark.django_db
def test_the_example_of_the_docs_loads():
    example = re.search(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert example is not None

    report = directory_load(json.loads(example.group(1)))

    assert (report.pbxes.created, report.companies.created) == (1, 1)
    assert Company.objects.get().pbx_key == "pbx-a"
