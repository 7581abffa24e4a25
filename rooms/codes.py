"""Room codes: six characters from A-Z and 2-9 without the look-alikes O, I, 0 and 1."""

import re
import secrets

from django.core.validators import RegexValidator

ROOM_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ROOM_CODE_LENGTH = 6
ROOM_CODE_PATTERN = re.compile(rf"^[{ROOM_CODE_ALPHABET}]{{{ROOM_CODE_LENGTH}}}$")

room_code_validator = RegexValidator(
    ROOM_CODE_PATTERN,
    f"A room code is {ROOM_CODE_LENGTH} characters from A-Z and 2-9, without O, I, 0 and 1.",
)


def room_code_generate() -> str:
    return "".join(secrets.choice(ROOM_CODE_ALPHABET) for _ in range(ROOM_CODE_LENGTH))


def room_code_normalize(raw: str) -> str:
    """Upper-case and strip a code typed by a person; codes are case-insensitive."""
    return (raw or "").strip().upper()


def room_code_is_valid(code: str) -> bool:
    # fullmatch: the pattern's "$" would also accept a trailing newline.
    return bool(ROOM_CODE_PATTERN.fullmatch(code))
