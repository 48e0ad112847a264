"""Model validation the admin and the directory import rely on."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from terminals.models import Terminal

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["Ana\r\nAction: Originate", "Ana\tGarcía", "Ana\x00"])
def test_a_user_name_with_control_characters_is_refused(company, make_user, name):
    user = make_user(company, "200")
    user.name = name
    with pytest.raises(ValidationError) as error:
        user.full_clean()
    assert "name" in error.value.message_dict


def test_a_device_of_another_company_is_refused(make_company, make_user):
    first, second = make_company(slug="one"), make_company(slug="two")
    make_user(first, "200", terminals=["PJSIP/200"])
    other = make_user(second, "200", terminals=[])
    terminal = Terminal(mac="0a0b0c0d0e0f", user=other, interface="pjsip/200")
    with pytest.raises(ValidationError) as error:
        terminal.full_clean()
    assert "interface" in error.value.message_dict


def test_two_devices_of_one_company_may_share_an_interface(company, make_user):
    make_user(company, "200", terminals=["PJSIP/200"])
    colleague = make_user(company, "201", terminals=[])
    Terminal(mac="0a0b0c0d0e0f", user=colleague, interface="PJSIP/200").full_clean()
