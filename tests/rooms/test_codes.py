"""Room codes: six characters from A-Z and 2-9 without O and I, case-insensitive, unique
among live rooms (DESIGN.md section 2)."""

import string
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import services
from rooms.codes import (
    ROOM_CODE_ALPHABET,
    ROOM_CODE_LENGTH,
    room_code_generate,
    room_code_is_valid,
    room_code_normalize,
    room_code_validator,
)
from rooms.models import Room

LOOK_ALIKES = set("OI01")
EXPECTED_ALPHABET = set(string.ascii_uppercase + "23456789") - LOOK_ALIKES

CODE_FIELD = Room._meta.get_field("code")
valid_codes = st.text(alphabet=ROOM_CODE_ALPHABET, min_size=ROOM_CODE_LENGTH, max_size=ROOM_CODE_LENGTH)


def is_valid_by_the_rules(text: str) -> bool:
    return len(text) == ROOM_CODE_LENGTH and all(ch in EXPECTED_ALPHABET for ch in text)


def test_alphabet_is_a_to_z_and_2_to_9_without_look_alikes():
    assert set(ROOM_CODE_ALPHABET) == EXPECTED_ALPHABET
    assert len(ROOM_CODE_ALPHABET) == len(EXPECTED_ALPHABET) == 32
    assert ROOM_CODE_LENGTH == 6


def test_generated_codes_are_always_valid():
    # Generation draws from ``secrets``, which hypothesis cannot steer: sample plenty instead.
    for _ in range(2000):
        code = room_code_generate()
        assert len(code) == 6
        assert set(code) <= EXPECTED_ALPHABET
        assert not set(code) & LOOK_ALIKES
        assert room_code_is_valid(code)
        room_code_validator(code)


def test_generated_codes_use_the_whole_alphabet():
    seen = set()
    for _ in range(400):
        seen |= set(room_code_generate())
    assert seen == EXPECTED_ALPHABET


@settings(max_examples=200, deadline=None)
@given(valid_codes, st.lists(st.booleans(), min_size=6, max_size=6), st.sampled_from(["", " ", "\t", "  \n"]))
def test_normalize_is_case_insensitive_and_strips(code, lower_flags, padding):
    typed = "".join(ch.lower() if flag else ch for ch, flag in zip(code, lower_flags, strict=True))
    assert room_code_normalize(f"{padding}{typed}{padding}") == code
    assert room_code_normalize(code.lower()) == room_code_normalize(code) == code
    assert room_code_is_valid(room_code_normalize(typed))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_normalize_is_idempotent(raw):
    once = room_code_normalize(raw)
    assert room_code_normalize(once) == once


def test_normalize_accepts_none_and_empty():
    assert room_code_normalize(None) == ""
    assert room_code_normalize("") == ""


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=10), st.text(alphabet=ROOM_CODE_ALPHABET + "OI01abc \n", max_size=8)))
def test_validation_agrees_with_the_rules(text):
    expected = is_valid_by_the_rules(text)
    assert room_code_is_valid(text) == expected
    if expected:
        assert CODE_FIELD.clean(text, None) == text
    else:
        with pytest.raises(ValidationError):
            CODE_FIELD.clean(text, None)


@pytest.mark.parametrize(
    "bad", ["ABCDE", "ABCDEFG", "ABCDEO", "ABCDEI", "ABCDE0", "ABCDE1", "abcdef", "ABC DE", "ABCDE-", ""]
)
def test_validator_rejects_bad_codes(bad):
    assert not room_code_is_valid(bad)
    with pytest.raises(ValidationError):
        room_code_validator(bad)
    with pytest.raises(ValidationError):
        CODE_FIELD.clean(bad, None)


def test_trailing_newline_is_not_a_valid_code():
    # A regex "$" matches before a final newline; neither the check nor the field may be fooled.
    assert not room_code_is_valid("ABCDEF\n")
    with pytest.raises(ValidationError):
        CODE_FIELD.clean("ABCDEF\n", None)


@settings(max_examples=50, deadline=None)
@given(valid_codes, st.sampled_from(["\n", " ", "A", "\t"]))
def test_any_valid_code_passes_and_nothing_longer(code, extra):
    assert CODE_FIELD.clean(code, None) == code
    room_code_validator(code)
    assert not room_code_is_valid(code + extra)
    with pytest.raises(ValidationError):
        CODE_FIELD.clean(code + extra, None)


# --- Uniqueness among live rooms ------------------------------------------------------------


def _error_fields(excinfo) -> set:
    return set(excinfo.value.message_dict)


def test_custom_code_is_normalized(make_room):
    room = make_room(custom_code="  hjk234 ")
    assert room.code == "HJK234"
    assert Room.objects.get(pk=room.pk).code == "HJK234"


def test_custom_code_taken_by_a_live_room_is_refused_naming_the_field(make_room):
    make_room(custom_code="HJK234")
    for attempt in ("HJK234", "hjk234", " Hjk234"):
        with pytest.raises(ValidationError) as excinfo:
            make_room(custom_code=attempt)
        assert _error_fields(excinfo) == {"custom_room_code"}
    assert Room.objects.filter(code="HJK234").count() == 1


def test_custom_code_taken_by_a_paused_room_is_refused(make_room):
    room = make_room(custom_code="HJK234")
    Room.objects.filter(pk=room.pk).update(status=Room.Status.PAUSED)
    with pytest.raises(ValidationError) as excinfo:
        make_room(custom_code="HJK234")
    assert _error_fields(excinfo) == {"custom_room_code"}


@pytest.mark.parametrize("bad", ["ABC", "ABCDEO", "ABCDE1", "ABCDEFG", "AB-DEF"])
def test_malformed_custom_code_is_refused_naming_the_field(make_room, bad):
    with pytest.raises(ValidationError) as excinfo:
        make_room(custom_code=bad)
    assert _error_fields(excinfo) == {"custom_room_code"}
    assert not Room.objects.exists()


def test_closed_room_code_can_be_reused(make_room, owner):
    old = make_room(custom_code="HJK234")
    services.room_close(room=old, actor=owner)
    new = make_room(custom_code="hjk234")
    assert new.code == old.code == "HJK234"
    assert new.pk != old.pk
    assert list(Room.objects.live().filter(code="HJK234")) == [new]


def test_swept_expired_room_code_can_be_reused(make_room):
    old = make_room(custom_code="HJK234")
    Room.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.rooms_expire() == 1
    new = make_room(custom_code="HJK234")
    assert new.pk != old.pk


def test_code_of_a_room_past_its_expiry_is_free_before_the_sweep(make_room):
    # "Unique among live rooms": a room past expires_at is not live, swept or not.
    old = make_room(custom_code="HJK234")
    Room.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    new = make_room(custom_code="HJK234")
    assert new.code == "HJK234"
    old.refresh_from_db()
    assert old.status == Room.Status.EXPIRED
    assert list(Room.objects.live().filter(code="HJK234")) == [new]


def test_generated_codes_are_unique_among_live_rooms(make_room):
    rooms = [make_room() for _ in range(25)]
    codes = [room.code for room in rooms]
    assert len(set(codes)) == len(codes)
    assert all(room_code_is_valid(code) for code in codes)
