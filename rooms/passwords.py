"""Room passwords: hashed with PBKDF2 at a cost fit for a join endpoint, checked in constant time.

Django's default for account passwords (1,000,000 PBKDF2 iterations, ~0.5 s of CPU here) made
every password join a half-second stall of the server's sync worker. Room passwords are
also behind the per-client lockout (``rooms.lockout``), and generated ones carry 72 bits.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class RoomPasswordHasher(PBKDF2PasswordHasher):
    algorithm = "room_pbkdf2_sha256"
    iterations = 60_000


_HASHER = RoomPasswordHasher()


def room_password_hash(password: str) -> str:
    return _HASHER.encode(password, _HASHER.salt())


def room_password_matches(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a stored room password hash."""
    if not password or not encoded or not encoded.startswith(f"{RoomPasswordHasher.algorithm}$"):
        return False
    return _HASHER.verify(password, encoded)
