"""The one judgement of a queue's alarm rules: which rule, its threshold, the value breaking it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pbx.history.selectors import alarm_breaches
from pbx.models import Queue


def _status(**figures) -> dict:
    return {"currentCalls": 0, "serviceRatio": 100.0, "abandonedRatio": 100.0, **figures}


def _queue(**rules) -> Queue:
    fields = {
        "alarm_waiting_calls": None,
        "alarm_wait_seconds": None,
        "alarm_service_ratio_below": None,
        "alarm_abandoned_ratio_below": None,
        **rules,
    }
    return Queue(name="q", **fields)


def test_every_broken_rule_names_its_threshold_and_value_in_rule_order():
    queue = _queue(
        alarm_waiting_calls=5,
        alarm_wait_seconds=60,
        alarm_service_ratio_below=Decimal("80"),
        alarm_abandoned_ratio_below=Decimal("90.5"),
    )
    status = _status(currentCalls=7, serviceRatio=62.5, abandonedRatio=90.0)
    assert alarm_breaches(queue, status, longest_wait=95.7) == [
        {"rule": "waiting_calls", "threshold": 5, "value": 7},
        {"rule": "wait_seconds", "threshold": 60, "value": 95},
        {"rule": "service_ratio", "threshold": 80.0, "value": 62.5},
        {"rule": "abandoned_ratio", "threshold": 90.5, "value": 90.0},
    ]


@pytest.mark.parametrize(
    ("rules", "status", "longest_wait"),
    [
        ({"alarm_waiting_calls": 5}, {"currentCalls": 4}, None),
        ({"alarm_wait_seconds": 60}, {"currentCalls": 1}, 59.9),
        ({"alarm_service_ratio_below": Decimal("80")}, {"serviceRatio": 80.0}, None),
        ({"alarm_abandoned_ratio_below": Decimal("80")}, {"abandonedRatio": 80.0}, None),
        ({}, {"currentCalls": 50, "serviceRatio": 0.0, "abandonedRatio": 0.0}, 3600),
    ],
    ids=["under-waiting", "under-wait", "ratio-at-target", "answered-at-target", "rules-off"],
)
def test_rules_hold_below_their_thresholds_or_when_off(rules, status, longest_wait):
    assert alarm_breaches(_queue(**rules), _status(**status), longest_wait=longest_wait) == []


def test_a_threshold_reached_exactly_breaks_the_counting_rules():
    queue = _queue(alarm_waiting_calls=3, alarm_wait_seconds=60)
    breaches = alarm_breaches(queue, _status(currentCalls=3), longest_wait=60)
    assert [b["rule"] for b in breaches] == ["waiting_calls", "wait_seconds"]


def test_the_wait_rule_needs_someone_waiting_even_at_zero_seconds():
    queue = _queue(alarm_wait_seconds=0)
    assert alarm_breaches(queue, _status(), longest_wait=None) == []
    assert alarm_breaches(queue, _status(currentCalls=1), longest_wait=0) == [
        {"rule": "wait_seconds", "threshold": 0, "value": 0}
    ]
