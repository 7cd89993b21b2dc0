"""Pure rules of the citizens' side: text cleaning, contact checks, tracking codes and tokens, the public timeline.

Each check raises InvalidInput (422) naming the offending field in `extra`; the report's own checks (description,
address) are intake's, applied to the cleaned text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from grid_mgmt.intake import rules as intake_rules
from grid_mgmt.lib.errors import DomainError, InvalidInput

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a code read aloud or copied by hand cannot be misread."""
CODE_LENGTH = 10
_CODE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAX_NAME = 100
MAX_EMAIL = 254
MAX_NOTE = 2000

# C0 and C1 controls except tab, newline and carriage return; lone surrogates; the non-characters U+FFFE/U+FFFF.
# None of them can travel in XML 1.0 (Open311) and PostgreSQL text cannot hold NUL: they are dropped, never stored.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0[1-9]\d{8,10}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")  # fmt: skip


def clean(text: str) -> str:
    """The text without the characters that cannot be stored or sent as XML (<, & and quotes are kept as they are)."""
    return _UNSTORABLE.sub("", text)


def description(text: str) -> str:
    """The cleaned description: 1 – 4,000 characters (intake's rule)."""
    return intake_rules.description(clean(text))


def address(text: str | None) -> str | None:
    return intake_rules.address(clean(text)) if text is not None else None


def note(text: str, field: str, what: str) -> str:
    """A comment, rating comment or reason: cleaned, 1 – 2,000 characters."""
    cleaned = clean(text).strip()
    if not cleaned:
        raise InvalidInput(f"{field} is empty: {what}", extra={"field": field})
    if len(cleaned) > MAX_NOTE:
        raise InvalidInput(
            f"{field} has {len(cleaned):,} characters; at most {MAX_NOTE:,} are accepted", extra={"field": field}
        )
    return cleaned


@dataclass(frozen=True, slots=True)
class Contact:
    """Checked, normalised contact details (the phone as digits only, the e-mail's domain in lower case)."""

    phone: str | None
    email: str | None
    name: str | None

    def subjects(self) -> list[str]:
        """What the per-contact rate limit counts: each phone and each e-mail (case-insensitive)."""
        phones = [f"phone:{self.phone}"] if self.phone else []
        return phones + ([f"email:{self.email.casefold()}"] if self.email else [])


def phone(value: str) -> str:
    """A mainland mobile (1xxxxxxxxxx) or a fixed line with its area code (0xx…), as digits; +86 / 0086 dropped."""
    digits = re.sub(r"[\s\-().]", "", value.strip())
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    raise InvalidInput(
        f"contact_phone {value[:40]!r} is not a phone number: give a mobile number (11 digits starting with 1) or a "
        "fixed line with its area code (e.g. 0719-1234567)",
        extra={"field": "contact_phone"},
    )


def email(value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > MAX_EMAIL or not _EMAIL.fullmatch(cleaned):
        raise InvalidInput(
            f"contact_email {value[:80]!r} is not an e-mail address such as name@example.cn",
            extra={"field": "contact_email"},
        )
    local, _, domain = cleaned.rpartition("@")
    return f"{local}@{domain.lower()}"


def contact(phone_: str | None, email_: str | None, name: str | None, consent: bool) -> Contact | None:
    """The contact details, checked; None when none were given. Any contact without consent is 422."""
    given = {k: v for k, v in (("contact_phone", phone_), ("contact_email", email_), ("contact_name", name))
             if v is not None and v.strip()}  # fmt: skip
    if not given:
        return None
    if not consent:
        raise InvalidInput(
            f"{', '.join(given)} given without consent: send consent=true to let the centre keep it (for "
            "questions about this report only), or leave the contact out",
            extra={"field": "consent"},
        )
    cleaned_name = clean(name).strip() if name else None
    if cleaned_name is not None and len(cleaned_name) > MAX_NAME:
        raise InvalidInput(f"contact_name has more than {MAX_NAME} characters", extra={"field": "contact_name"})
    p = phone(phone_) if phone_ and phone_.strip() else None
    e = email(email_) if email_ and email_.strip() else None
    if p is None and e is None:
        raise InvalidInput(
            "a contact_name alone cannot be used to reach you: add contact_phone or contact_email",
            extra={"field": "contact_phone"},
        )
    return Contact(phone=p, email=e, name=cleaned_name or None)


# --- tracking codes and tokens ----------------------------------------------------------------------------------


def new_tracking_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def tracking_code(value: str) -> str | None:
    """A code as typed (any case, with spaces or dashes, O for 0, I or L for 1) → its canonical form; None when it
    cannot be a code."""
    canonical = re.sub(r"[\s-]", "", value).upper().translate(_MISREAD)
    return canonical if _CODE.fullmatch(canonical) else None


def new_token() -> tuple[str, str]:
    """(the secret token for the citizen, the sha256 hex the database keeps)."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token(token: str | None, stored_sha256: str) -> None:
    """403 unless `token` is the report's (compared in constant time)."""
    if not token:
        raise DomainError(
            "this needs the report's token: send it in the X-Report-Token header (or ?token=)", status_code=403
        )
    if not hmac.compare_digest(token_hash(token.strip()), stored_sha256):
        raise DomainError("wrong token for this report", status_code=403)


# --- the public timeline ----------------------------------------------------------------------------------------

STEPS: dict[str, str] = {
    "report": "received",
    "verify_pass": "verified",
    "verify_fail": "not_confirmed",
    "register": "registered",
    "reject": "rejected",
    "decline": "rejected",
    "self_handle": "handled",
    "dispatch": "dispatched",
    "acknowledge": "in_progress",
    "send_back": "registered",
    "feed_back": "handled",
    "request_check": "checking",
    "check_pass": "checked",
    "check_fail": "rework",
    "close": "closed",
    "reopen": "reopened",
    "shelve": "shelved",
    "unshelve": "resumed",
    "merge": "merged",
    "split": "received",
    "cancel": "cancelled",
    "citizen_comment": "comment",
    "citizen_photo": "comment",
    "citizen_rating": "rated",
}
"""Timeline action → the coarse public step. Other rows (forwarding between units, postponements, urging, deadline
warnings) are internal and not shown; neither is who acted, their notes or their unit."""

COMMENT_ACTION = "citizen_comment"
PHOTO_ACTION = "citizen_photo"
RATING_ACTION = "citizen_rating"


def steps(rows: list[tuple[str, dt.datetime]]) -> list[tuple[str, dt.datetime]]:
    """(action, at) of the timeline, oldest first → the public steps, a step repeated in a row shown once."""
    out: list[tuple[str, dt.datetime]] = []
    for action, at in rows:
        step = STEPS.get(action)
        if step is not None and not (out and out[-1][0] == step and step != "comment"):
            out.append((step, at))
    return out


def reopen_until(status: str, closed_at: dt.datetime | None, days: int) -> dt.datetime | None:
    """Until when a closed report may be reopened by its citizen (None when it is not closed)."""
    if status != "closed" or closed_at is None:
        return None
    return closed_at + dt.timedelta(days=days)
