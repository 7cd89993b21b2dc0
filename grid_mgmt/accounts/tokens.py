"""HS256 access tokens (RFC 7519 JWT, made with hmac + msgspec) and opaque refresh tokens stored as sha256."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

import msgspec

from grid_mgmt.settings import Settings

REFRESH_TOKEN_BYTES = 32
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_DEV_KEY_PREFIX = b"grid-mgmt insecure development key:"


class AccessClaims(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What an access token says: `sub` the user id, `tv` the user's token version when it was issued."""

    sub: str
    roles: list[str]
    unit: str | None
    district: str | None
    tv: int
    iat: int
    exp: int
    jti: str

    @property
    def user_id(self) -> int:
        return int(self.sub)


class TokenError(Exception):
    """The token is malformed, forged or expired (the message says which; the API answers 401)."""


def signing_key(settings: Settings) -> bytes:
    """GRID_JWT_SECRET, or (unset) a development key derived from the database URL — same on every process."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    return hashlib.sha256(_DEV_KEY_PREFIX + settings.database_url.encode()).digest()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class TokenCodec:
    """Issues and verifies access tokens; verification is one HMAC and one msgspec decode (a few µs)."""

    def __init__(self, key: bytes, lifetime_s: int):
        if not key:
            raise ValueError("the signing key is empty")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.lifetime_s = lifetime_s
        self._decoder = msgspec.json.Decoder(AccessClaims)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        return cls(signing_key(settings), settings.access_token_minutes * 60)

    def _sign(self, signing_input: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(signing_input)
        return _b64(mac.digest())

    def issue(
        self,
        *,
        user_id: int,
        roles: Iterable[str],
        unit: str | None,
        district: str | None,
        token_version: int,
        now: float | None = None,
        lifetime_s: int | None = None,
    ) -> tuple[str, AccessClaims]:
        """A signed token and its claims; `now`/`lifetime_s` exist for tests (an already expired token)."""
        iat = int(time.time() if now is None else now)
        claims = AccessClaims(
            sub=str(user_id),
            roles=sorted(roles),
            unit=unit,
            district=district,
            tv=token_version,
            iat=iat,
            exp=iat + (self.lifetime_s if lifetime_s is None else lifetime_s),
            jti=secrets.token_urlsafe(12),
        )
        signing_input = _HEADER + b"." + _b64(msgspec.json.encode(claims))
        return (signing_input + b"." + self._sign(signing_input)).decode("ascii"), claims

    def verify(self, token: str, now: float | None = None) -> AccessClaims:
        """The claims of a genuine, unexpired token; TokenError otherwise."""
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise TokenError("the access token is malformed") from None
        header, dot, rest = raw.partition(b".")
        payload, dot2, signature = rest.partition(b".")
        if not dot or not dot2 or header != _HEADER:  # only our own header: no alg=none, no algorithm confusion
            raise TokenError("the access token is malformed")
        if not hmac.compare_digest(self._sign(raw[: len(header) + 1 + len(payload)]), signature):
            raise TokenError("the access token signature is invalid")
        try:
            claims = self._decoder.decode(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
            claims.user_id  # noqa: B018  # sub must be numeric
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise TokenError("the access token is malformed") from None
        if claims.exp <= (time.time() if now is None else now):
            raise TokenError("the access token has expired: refresh it")
        return claims


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token (43 URL-safe characters, 256 bits) and the sha256 that is stored instead of it."""
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token (hex sha256; the token itself has enough entropy for a plain hash)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
