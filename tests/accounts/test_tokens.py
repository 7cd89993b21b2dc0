"""Access tokens (HS256 JWT made by hand) and refresh-token hashing, without the API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import pytest

from grid_mgmt.accounts.tokens import TokenCodec, TokenError, hash_refresh_token, new_refresh_token, signing_key
from grid_mgmt.settings import Settings

KEY = b"k" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _issue(codec: TokenCodec, **kw: object) -> str:
    token, _ = codec.issue(user_id=7, roles=["worker"], unit=None, district="420323", token_version=3, **kw)  # type: ignore[arg-type]
    return token


def test_round_trip_is_a_standard_jwt() -> None:
    codec = TokenCodec(KEY, 900)
    token = _issue(codec)
    header, payload, signature = token.split(".")
    assert json.loads(_unb64(header)) == {"alg": "HS256", "typ": "JWT"}
    body = json.loads(_unb64(payload))
    assert body["sub"] == "7" and body["roles"] == ["worker"] and body["tv"] == 3 and body["district"] == "420323"
    assert body["exp"] - body["iat"] == 900 and body["jti"]
    expected = hmac.new(KEY, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert _unb64(signature) == expected
    claims = codec.verify(token)
    assert claims.user_id == 7 and claims.tv == 3
    assert _issue(codec) != token  # a fresh jti every time


def test_expired_token_is_refused() -> None:
    codec = TokenCodec(KEY, 900)
    token = _issue(codec, now=time.time() - 1000)
    with pytest.raises(TokenError, match="expired"):
        codec.verify(token)
    with pytest.raises(TokenError, match="expired"):
        codec.verify(_issue(codec, lifetime_s=0))


def test_tampered_or_foreign_tokens_are_refused() -> None:
    codec = TokenCodec(KEY, 900)
    header, payload, signature = _issue(codec).split(".")
    body = json.loads(_unb64(payload))
    body["roles"] = ["admin"]
    forged = f"{header}.{_b64(json.dumps(body).encode())}.{signature}"
    with pytest.raises(TokenError, match="signature"):
        codec.verify(forged)
    with pytest.raises(TokenError, match="signature"):
        TokenCodec(b"another key of thirty-two bytes!", 900).verify(f"{header}.{payload}.{signature}")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(TokenError, match="signature"):
        codec.verify(f"{header}.{payload}.{flipped}")
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}."
    with pytest.raises(TokenError, match="malformed"):
        codec.verify(unsigned)
    for junk in ("", "abc", "a.b", "a.b.c.d", "é.é.é", f"{header}.!!!.{signature}"):
        with pytest.raises(TokenError):
            codec.verify(junk)


def test_signed_garbage_payload_is_malformed_not_a_crash() -> None:
    codec = TokenCodec(KEY, 900)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": "abc", "roles": [], "unit": None, "district": None, "tv": 0, "iat": 0, "exp": 2**40, "jti": "j"}
    for payload in (b"not json", b'{"sub": "x"}', json.dumps(claims).encode()):
        signing_input = f"{header}.{_b64(payload)}"
        signature = _b64(hmac.new(KEY, signing_input.encode(), hashlib.sha256).digest())
        with pytest.raises(TokenError, match="malformed"):
            codec.verify(f"{signing_input}.{signature}")


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    token, stored = new_refresh_token()
    assert len(token) == 43 and stored == hashlib.sha256(token.encode()).hexdigest() == hash_refresh_token(token)
    assert new_refresh_token()[0] != token


def test_signing_key_comes_from_the_secret_or_a_stable_dev_key() -> None:
    settings = Settings()
    assert signing_key(replace(settings, jwt_secret="s" * 40)) == b"s" * 40
    dev = signing_key(replace(settings, jwt_secret=""))
    assert dev == signing_key(replace(settings, jwt_secret="")) and len(dev) == 32  # same on every process
