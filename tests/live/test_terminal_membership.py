"""Terminal registration refuses a terminal without a user before anything reaches the PBX."""

from __future__ import annotations

import pytest

from pbx.errors import Conflict
from terminals.models import Terminal
from terminals.services import terminal_join, terminal_register, terminal_unregister

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("operation", [terminal_register, terminal_unregister, terminal_join])
def test_a_terminal_without_a_user_is_a_conflict_and_the_pbx_is_not_asked(gateway, operation):
    terminal = Terminal.objects.create(mac="0a0b0c0d0e0f", interface="PJSIP/299")
    with pytest.raises(Conflict, match="0a0b0c0d0e0f"):
        operation(gateway=gateway(), terminal=terminal)
    assert gateway.calls == []
    terminal.refresh_from_db()
    assert terminal.registered is False
