"""Domain errors and the one table of the statuses they are answered with."""

from __future__ import annotations

import pytest
from django.utils import translation

from pbx.errors import Conflict, DomainError, NotFound, message_of, status_of
from pbx.gateway import PbxActionFailed, PbxUnavailable
from swanproject.envelope import domain_answer, exception_handler


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (NotFound("Extension '9' not found."), 404, "Extension '9' not found."),
        (Conflict("The PBX refused the change: busy"), 409, "The PBX refused the change: busy"),
        (DomainError("Bad range."), 400, "Bad range."),
        (
            PbxUnavailable("connection refused"),
            503,
            "The PBX cannot be reached right now; try again later.",
        ),
    ],
)
def test_each_error_is_answered_with_its_status_and_message(error, status, message):
    with translation.override("en"):
        assert (status_of(error), message_of(error)) == (status, message)
        response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data == {"error": True, "error-msg": message, "result": None}


def test_an_error_carries_its_result_into_the_envelope():
    response = exception_handler(Conflict("In use.", result={"user": "201"}), {})
    assert response.status_code == 409
    assert response.data["result"] == {"user": "201"}


def test_what_the_pbx_refused_is_not_a_domain_error_until_a_service_says_what_it_means():
    # A PbxActionFailed that escapes a service is a bug to see, not an answer to give.
    assert status_of(PbxActionFailed("QueuePause", "Interface not found")) is None
    assert domain_answer(ValueError("x")) is None
    assert exception_handler(PbxActionFailed("QueuePause", "nope"), {}).status_code == 500


def test_an_unreachable_pbx_is_logged_for_the_operator(caplog):
    exception_handler(PbxUnavailable("connect timed out"), {})
    assert "pbx unavailable error=connect timed out" in caplog.text
