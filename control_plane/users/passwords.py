"""Password hashing (argon2id) and the strength policy applied at signup and for admins created by the CLI.

Parameters are OWASP's argon2id minimum (m=19 MiB, t=2, p=1): about 20 ms per hash on one core, which keeps login
cheap on a 2-core box while costing an attacker the same memory per guess. Hashes carry their parameters, so
raising them later only needs `needs_rehash` at the next login.
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from control_plane.errors import InvalidRequestError

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)

# NIST SP 800-63B §3.1.1.2: no composition rules, but refuse well-known passwords (the head of public breach lists).
_COMMON = frozenset(
    {
        "password",
        "passw0rd",
        "password1",
        "qwerty",
        "qwertyuiop",
        "qwerty123",
        "123456",
        "1234567",
        "12345678",
        "123456789",
        "1234567890",
        "0123456789",
        "111111",
        "000000",
        "letmein",
        "welcome",
        "iloveyou",
        "admin",
        "administrator",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "trustno1",
        "abc123",
        "abcdef",
        "abcdefgh",
        "abcdefghij",
        "superman",
        "batman",
        "master",
        "shadow",
        "octavia",
    }
)


class WeakPasswordError(InvalidRequestError):
    code = "weak_password"


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so the response time does not reveal which accounts exist."""
    return _HASHER.hash("octavia-dummy-password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def password_problems(password: str, email: str) -> list[str]:
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must have at most {MAX_LENGTH} characters")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        problems.append(f"must use at least {MIN_DISTINCT_CHARACTERS} different characters")
    lowered = password.lower()
    if lowered in _COMMON or re.sub(r"[\d\W_]+$", "", lowered) in _COMMON:
        problems.append("is a commonly used password")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        problems.append("must not contain your email address")
    return problems


def check_password_strength(password: str, email: str) -> None:
    problems = password_problems(password, email)
    if problems:
        raise WeakPasswordError("password is too weak: " + "; ".join(problems), details={"problems": problems})
