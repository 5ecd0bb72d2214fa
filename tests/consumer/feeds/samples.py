"""Feeds, passwords and credentials shared by the tests of ``consumer.feeds``."""

from __future__ import annotations

import base64
from pathlib import Path

from hypothesis import strategies as st

from consumer.feeds import hash_password

EXAMPLE = Path(__file__).parents[3] / "examples" / "feeds.toml"
FAST = {"n": 2**10, "r": 8, "p": 1}
LETTERS_PASSWORD = "letters-secret-Pa55"
FLATS_PASSWORD = "flats-secret-Pa55w0rd"
LETTERS_HASH = hash_password(LETTERS_PASSWORD, **FAST)
FLATS_HASH = hash_password(FLATS_PASSWORD, **FAST)
OUTSIDE = "203.0.113.7"
USPS = "56.1.2.3"
PROXY = "10.0.0.5"

TABLE_TOML = f"""
[feeds.letters]
kind = "piece"
campaign = "Spring 2026"
user = "usps-letters"
password_hash = "{LETTERS_HASH}"
allowed_networks = ["56.0.0.0/8", "2001:db8:56::/48"]
[feeds.letters.topics]
piece = "acme.letters.piece-scans"

[feeds.flats]
user = "usps-flats"
password_hash = "{FLATS_HASH}"

[proxies]
trusted = ["10.0.0.0/8", "fd00::/8"]
"""


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


LETTERS = basic("usps-letters", LETTERS_PASSWORD)
FLATS = basic("usps-flats", FLATS_PASSWORD)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    return path


def feed_toml(**fields: str) -> str:
    base = {"user": '"u"', "password_hash": f'"{LETTERS_HASH}"'}
    base.update(fields)
    lines = [f"{key} = {value}" for key, value in base.items() if value != "<absent>"]
    return "[feeds.f]\n" + "\n".join(lines) + "\n"


def near_misses(right: str) -> st.SearchStrategy[str]:
    """Strings that are not ``right`` but look like it, and random ones.

    What a check comparing too little (a prefix, the first byte of a digest, the length)
    would take for ``right``: each proper prefix, ``right`` with a suffix, one character
    changed, inserted or removed anywhere, ``right`` twice, the same length at random,
    and any other length at random.
    """
    positions = st.integers(min_value=0, max_value=len(right) - 1)
    any_text = st.text(st.characters(codec="utf-8"), max_size=40)
    return st.one_of(
        st.integers(min_value=0, max_value=len(right) - 1).map(lambda n: right[:n]),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).map(lambda s: right + s),
        st.tuples(positions, st.characters(codec="utf-8")).map(
            lambda at: right[: at[0]] + at[1] + right[at[0] + 1 :]
        ),
        st.tuples(positions, st.characters(codec="utf-8")).map(
            lambda at: right[: at[0]] + at[1] + right[at[0] :]
        ),
        positions.map(lambda at: right[:at] + right[at + 1 :]),
        st.just(right + right),
        st.text(st.characters(codec="utf-8"), min_size=len(right), max_size=len(right)),
        any_text,
    ).filter(lambda candidate: candidate != right)
