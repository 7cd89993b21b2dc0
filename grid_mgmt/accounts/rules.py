"""Pure account rules: what a username, password and role set must look like, and the errors of signing in."""

from __future__ import annotations

import re
from collections.abc import Sequence

from grid_mgmt.lib.errors import DomainError, InvalidInput

USERNAME = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
PHONE = re.compile(r"[0-9+\-() ]{1,30}")
PASSWORD_MIN, PASSWORD_MAX = 8, 256
DISPLAY_NAME_MAX = 100

BAD_CREDENTIALS = "wrong username or password"
"""The one answer to every failed login (unknown user, wrong password, deactivated): no user enumeration."""


class AuthFailed(DomainError):
    """No valid credentials or token (401)."""

    status_code = 401


class Throttled(DomainError):
    """Too many failed attempts (429); `retry_after` seconds until the next one is allowed."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, extra={"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            f"username must be 2–64 characters of letters, digits and _ . @ -; got {username[:80]!r}",
            extra={"field": "username"},
        )
    return username


def check_password(password: str, username: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"password must have at least {PASSWORD_MIN} characters", extra={"field": "password"})
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"password must have at most {PASSWORD_MAX} characters", extra={"field": "password"})
    if password.casefold() == username.casefold():
        raise InvalidInput("password must not be the username", extra={"field": "password"})
    if not password.strip():
        raise InvalidInput("password must not be only spaces", extra={"field": "password"})
    return password


def check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > DISPLAY_NAME_MAX:
        raise InvalidInput(
            f"display_name must have 1–{DISPLAY_NAME_MAX} characters (not only spaces)",
            extra={"field": "display_name"},
        )
    return name


def check_phone(phone: str | None) -> str | None:
    if phone is None:
        return None
    phone = phone.strip()
    if not PHONE.fullmatch(phone):
        raise InvalidInput("phone must be up to 30 digits, spaces and + - ( )", extra={"field": "phone"})
    return phone


def check_roles(roles: Sequence[str]) -> list[str]:
    """The roles without repeats, in their given order; at least one."""
    if not roles:
        raise InvalidInput("roles must name at least one role", extra={"field": "roles"})
    return list(dict.fromkeys(roles))


def check_scope(roles: Sequence[str], unit_code: str | None, duty_grid_codes: Sequence[str]) -> None:
    """Unit staff belong to a unit; only workers patrol duty grids."""
    if "unit_staff" in roles and not unit_code:
        raise InvalidInput("unit_staff users need a unit_code (the unit they work for)", extra={"field": "unit_code"})
    if duty_grid_codes and "worker" not in roles:
        raise InvalidInput(
            "duty_grid_codes are for workers only: add the worker role or send duty_grid_codes: []",
            extra={"field": "duty_grid_codes"},
        )
