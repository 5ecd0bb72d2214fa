"""The ``[[campaigns]]`` tables of the feeds file: rules read in order, bad ones named."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.feeds import FeedsFileError, hash_password, parse_feeds


def feeds(campaigns: str) -> dict[str, Any]:
    import tomllib

    digest = hash_password("a-long-password", n=2**10)
    return tomllib.loads(f'[feeds.a]\nuser = "u"\npassword_hash = "{digest}"\n{campaigns}')


def test_campaigns_in_the_feeds_file() -> None:
    table = parse_feeds(
        feeds(
            '[[campaigns]]\nid = "spring"\nmailer_ids = ["902345678"]\n'
            '[[campaigns]]\nid = "low"\nserial_ranges = [["0", "1999"], ["5000", "5999"]]\n'
        )
    )
    assert [rule.campaign for rule in table.campaigns] == ["spring", "low"]
    assert table.campaigns[1].serial_ranges == ((0, 1999), (5000, 5999))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[campaigns]]\nmailer_ids = ["1"]\n', "campaigns[0].id"),
        ('[[campaigns]]\nid = "x"\nserial_ranges = [["9", "1"]]\n', "campaigns[0].serial_ranges"),
        ('[[campaigns]]\nid = "x"\nserial_ranges = [["a", "b"]]\n', "campaigns[0].serial_ranges"),
        ('[[campaigns]]\nid = "x"\nstids = "270"\n', "campaigns[0].stids"),
        ('[[campaigns]]\nid = "x"\ncolour = "red"\n', "campaigns[0]"),
    ],
)
def test_bad_campaign_rules_name_the_field(text: str, field: str) -> None:
    with pytest.raises(FeedsFileError) as caught:
        parse_feeds(feeds(text))
    assert caught.value.field.startswith(field)
