"""``budai whoami`` shows the project and scopes of the key in use, never the key."""

from __future__ import annotations

import json

from .conftest import Budai


def test_whoami_shows_project_and_scopes_not_the_key(budai: Budai) -> None:
    table = budai("whoami")
    assert table.code == 0, table.err
    assert "default" in table.out
    assert budai.gateway.api_key not in table.out + table.err
    data = json.loads(budai("whoami", "-o", "json").out)
    assert data["project"] == "default"
    assert "admin" in data["scopes"]
    assert budai.gateway.api_key not in json.dumps(data)
