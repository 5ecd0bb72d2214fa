"""Fixtures of the tests of deploy/."""

from __future__ import annotations

import pytest

from tests.deploy.files import debian_binary


@pytest.fixture(scope="session")
def promtool() -> str:
    """The real promtool (Debian package ``prometheus``)."""
    return debian_binary("promtool")
