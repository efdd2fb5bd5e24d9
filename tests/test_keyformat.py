"""The secret's format, and the parsers for what users type (names, expiry dates)."""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keytui.core import keyformat, validate
from keytui.core.errors import InvalidInput

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WELL_FORMED = re.compile(r"kt_[0-9a-z]{10}_[0-9A-Za-z]{38}")
ids = st.text(alphabet=keyformat.ID_ALPHABET, min_size=10, max_size=10)


# -- the secret ---------------------------------------------------------------------------------


def test_new_secret_roundtrips_through_parse():
    key_id = keyformat.new_key_id()
    secret = keyformat.new_secret(key_id)
    assert secret.startswith(f"kt_{key_id}_")
    assert len(secret) == keyformat.SECRET_LENGTH
    parsed = keyformat.parse_secret(secret)
    assert parsed is not None and parsed.key_id == key_id
    # Pasted and piped secrets carry whitespace.
    assert keyformat.parse_secret(f"  {secret}\n") == parsed


def test_random_part_carries_at_least_160_bits():
    import math

    assert keyformat.RANDOM_LENGTH * math.log2(62) >= 160
    secrets_ = {keyformat.new_secret("abcdefghij") for _ in range(200)}
    assert len(secrets_) == 200


def test_checksum_is_crc32_in_base62():
    import zlib

    for _ in range(500):  # (small CRCs too: their leading digits are 0)
        secret = keyformat.new_secret(keyformat.new_key_id())
        body, check = secret[:-6], secret[-6:]
        number = 0
        for char in check:
            number = number * 62 + keyformat.BASE62.index(char)
        assert number == zlib.crc32(body.encode())
    assert keyformat.checksum("") == "000000"  # crc32(b"") == 0


@pytest.mark.parametrize("position", [0, 3, 5, 14, 20, 40, -1])
def test_a_one_character_typo_fails_the_checksum(position):
    secret = keyformat.new_secret("0123456789")
    chars = list(secret)
    index = position % len(chars)
    alphabet = keyformat.BASE62 if index > 13 else keyformat.ID_ALPHABET
    chars[index] = next(c for c in alphabet if c != chars[index])
    assert keyformat.parse_secret("".join(chars)) is None


def test_transposed_characters_fail_the_checksum():
    secret = keyformat.new_secret("0123456789")
    random_part = secret[14:46]
    i = next(i for i in range(len(random_part) - 1) if random_part[i] != random_part[i + 1])
    swapped = secret[: 14 + i] + random_part[i + 1] + random_part[i] + secret[14 + i + 2 :]
    assert keyformat.parse_secret(swapped) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "kt_",
        "kt_0123456789_",
        "KT_0123456789_" + "a" * 38,
        "sk_live_abc",
        "\x00" * 60,
        None,
        42,
    ],
)
def test_malformed_secrets_do_not_parse(text):
    assert keyformat.parse_secret(text) is None


def test_new_secret_refuses_a_bad_id():
    with pytest.raises(ValueError):
        keyformat.new_secret("UPPER12345")


def test_mask_hides_the_random_part():
    secret = keyformat.new_secret("0123456789")
    masked = keyformat.mask("0123456789")
    assert masked.startswith("kt_0123456789_")
    assert secret[14:] not in masked


@given(ids)
def test_every_generated_secret_parses(key_id):
    secret = keyformat.new_secret(key_id)
    assert keyformat.parse_secret(secret) == keyformat.ParsedSecret(key_id)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=40, max_size=60),
        st.builds(
            lambda i, rest: f"kt_{i}_{rest}",
            ids,
            st.text(alphabet=keyformat.BASE62, min_size=36, max_size=40),
        ),
    )
)
def test_arbitrary_text_never_crashes_and_only_well_formed_parses(text):
    parsed = keyformat.parse_secret(text)
    if parsed is not None:
        stripped = text.strip()
        assert WELL_FORMED.fullmatch(stripped)
        assert keyformat.checksum(stripped[:-6]) == stripped[-6:]
        assert parsed.key_id == stripped[3:13]


@given(ids, st.integers(min_value=14, max_value=keyformat.SECRET_LENGTH - 1), st.data())
def test_any_single_substitution_is_rejected(key_id, index, data):
    secret = keyformat.new_secret(key_id)
    replacement = data.draw(st.sampled_from(keyformat.BASE62))
    assume(replacement != secret[index])
    typo = secret[:index] + replacement + secret[index + 1 :]
    # CRC32 catches every single-character error.
    assert keyformat.parse_secret(typo) is None


# -- names ----------------------------------------------------------------------------------------


@given(st.text(max_size=150))
def test_name_accepts_exactly_1_to_100_printable_characters(text):
    stripped = text.strip()
    ok = 1 <= len(stripped) <= 100 and stripped.isprintable()
    try:
        result = validate.name(text)
    except InvalidInput as exc:
        assert not ok
        assert "\n" not in str(exc)
    else:
        assert ok and result == stripped


@pytest.mark.parametrize(
    "bad", ["", "   ", "x" * 101, "a\x1b[2Jb", "tab\there", "nul\x00", "rtl\u202eoverride"]
)
def test_name_refusals(bad):
    with pytest.raises(InvalidInput):
        validate.name(bad)


def test_name_keeps_markup_as_text():
    assert validate.name("[b]x[/b]") == "[b]x[/b]"
    assert validate.name("x" * 100) == "x" * 100


# -- expiry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["never", "NEVER", None, " never "])
def test_expiry_never(text):
    assert validate.expiry(text, NOW) is None


def test_expiry_days_and_dates():
    assert validate.expiry("90d", NOW) == NOW + timedelta(days=90)
    assert validate.expiry("2027-01-31", NOW) == datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    # Today is valid through its last second.
    assert validate.expiry("2026-11-22", NOW) == datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    assert validate.expiry(date(2027, 1, 1), NOW).tzinfo is not None


@pytest.mark.parametrize(
    "bad",
    [
        "0d",
        "2026-11-21",
        "yesterday",
        "90",
        "d",
        "-5d",
        "2026-13-01",
        "20270101",
        "2027-W01-1",
        "99999999d",
        "36501d",
        "2300-01-01",
        "90 d",
        "٣d",
        "２０２７-01-01",
    ],
)
def test_expiry_refusals(bad):
    with pytest.raises(InvalidInput):
        validate.expiry(bad, NOW)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=20),
        st.integers(min_value=-10, max_value=40_000).map(lambda n: f"{n}d"),
        st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 1, 1)).map(date.isoformat),
    )
)
def test_expiry_parses_only_the_three_forms_and_never_crashes(text):
    try:
        result = validate.expiry(text, NOW)
    except InvalidInput as exc:
        assert "\n" not in str(exc)
        return
    form = text.strip().lower()
    if result is None:
        assert form in ("never", "none", "")
        return
    assert result.tzinfo is not None and NOW < result <= NOW + timedelta(days=36_500)
    days = re.fullmatch(r"([0-9]{1,6})d", form, flags=re.ASCII)
    if days:
        assert result == NOW + timedelta(days=int(days.group(1)))
    else:
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", form, flags=re.ASCII)
        assert result == datetime.combine(
            date.fromisoformat(form), datetime.max.time().replace(microsecond=0), tzinfo=UTC
        )


@given(st.text(max_size=40))
def test_hosts_never_crash(text):
    try:
        validate.host(text)
    except InvalidInput:
        pass


@pytest.mark.parametrize("text", ["abcdefghij\n", " abcdefghij", "ABCDEFGHIJ", "abcdefghi", 7])
def test_only_a_whole_id_is_an_id(text):
    """A bulk revoke takes an ID as it is when it is one: a trailing newline is not."""
    assert not keyformat.is_key_id(text)
    assert keyformat.is_key_id("abcdefghij")
    if isinstance(text, str) and text.strip():
        assert validate.key_ref(text) == text.strip().lower()
