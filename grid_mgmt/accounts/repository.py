"""SQL of the accounts feature: users, their data scope, and refresh-token sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.accounts.schemas import UserRead
from grid_mgmt.lib.sql import text

_CODES = ARRAY(VARCHAR())

_USER_COLUMNS = """
u.id, u.username, u.display_name, u.roles, u.unit_code, u.district_code, u.phone, u.active, u.created_at,
ARRAY(SELECT w.duty_grid_code FROM duty_grid_worker w WHERE w.user_id = u.id ORDER BY 1)::varchar[] AS duty_grid_codes
"""

# The facts authentication needs, in one statement: the unit subtree and the unit grids of the duty grids.
_SCOPE_SQL = text("""
SELECT u.id, u.username, u.roles, u.unit_code, u.district_code, u.active, u.token_version,
  CASE WHEN u.unit_code IS NULL THEN '{}'::varchar[] ELSE ARRAY(
    WITH RECURSIVE sub(code) AS (
      SELECT u.unit_code UNION SELECT c.code FROM unit c JOIN sub ON c.parent_code = sub.code
    ) SELECT code FROM sub)::varchar[] END AS unit_codes,
  ARRAY(SELECT dgg.grid_code FROM duty_grid_worker w JOIN duty_grid_grid dgg ON dgg.duty_grid_code = w.duty_grid_code
        WHERE w.user_id = u.id)::varchar[] AS grid_codes
FROM app_user u WHERE u.id = :id
""")


def _user(row: Any) -> UserRead:
    return UserRead(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        roles=list(row.roles),
        unit_code=row.unit_code,
        district_code=row.district_code,
        phone=row.phone,
        active=row.active,
        duty_grid_codes=list(row.duty_grid_codes),
        created_at=row.created_at,
    )


async def scope_facts(conn: AsyncConnection, user_id: int) -> Any | None:
    """The row authentication caches: active, token_version, roles, unit subtree, duty unit grids."""
    return (await conn.execute(_SCOPE_SQL, {"id": user_id})).first()


async def login_row(conn: AsyncConnection, username: str | None = None, *, user_id: int | None = None) -> Any | None:
    """id, password_hash, active and token_version of a username (exact match) or a user id."""
    where, value = ("username = :v", username) if user_id is None else ("id = :v", user_id)
    sql = text(f"SELECT id, password_hash, active, token_version FROM app_user WHERE {where}")
    return (await conn.execute(sql, {"v": value})).first()


async def get_user(conn: AsyncConnection, user_id: int, *, lock: bool = False) -> UserRead | None:
    sql = f"SELECT {_USER_COLUMNS} FROM app_user u WHERE u.id = :id" + (" FOR UPDATE" if lock else "")
    row = (await conn.execute(text(sql), {"id": user_id})).first()
    return _user(row) if row is not None else None


async def user_id_by_username(conn: AsyncConnection, username: str) -> int | None:
    user_id: int | None = await conn.scalar(text("SELECT id FROM app_user WHERE username = :u"), {"u": username})
    return user_id


async def list_users(
    conn: AsyncConnection,
    *,
    after: str | None,
    limit: int,
    role: str | None,
    unit_code: str | None,
    active: bool | None,
    q: str | None,
) -> list[UserRead]:
    """A page ordered by username (keyset: usernames after `after`)."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        where.append("u.username > :after")
        params["after"] = after
    if role is not None:
        where.append("CAST(:role AS varchar) = ANY(u.roles)")
        params["role"] = role
    if unit_code is not None:
        where.append("u.unit_code = :unit_code")
        params["unit_code"] = unit_code
    if active is not None:
        where.append("u.active = :active")
        params["active"] = active
    if q:
        where.append("(u.username ILIKE :q OR u.display_name ILIKE :q OR u.phone ILIKE :q)")
        params["q"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = f"SELECT {_USER_COLUMNS} FROM app_user u WHERE {' AND '.join(where)} ORDER BY u.username LIMIT :limit"
    return [_user(r) for r in (await conn.execute(text(sql), params)).all()]


async def username_taken(conn: AsyncConnection, username: str) -> bool:
    """Whether the username exists, ignoring case (`Worker1` would be confused with `worker1`)."""
    sql = text("SELECT EXISTS (SELECT 1 FROM app_user WHERE lower(username) = lower(:u))")
    return bool(await conn.scalar(sql, {"u": username}))


async def insert_user(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """The new user's id; None when the username exists."""
    sql = text("""
        INSERT INTO app_user (username, password_hash, display_name, roles, unit_code, district_code, phone)
        VALUES (:username, :password_hash, :display_name, :roles, :unit_code, :district_code, :phone)
        ON CONFLICT (username) DO NOTHING RETURNING id
    """).bindparams(bindparam("roles", type_=_CODES))
    user_id: int | None = await conn.scalar(sql, values)
    return user_id


async def update_user(conn: AsyncConnection, user_id: int, values: dict[str, Any], *, bump: bool = False) -> None:
    """Set the given columns (only those: the locate index reloads when user columns it shows change)."""
    sets = [f"{column} = :{column}" for column in values]
    if bump:
        sets.append("token_version = token_version + 1")
    if not sets:
        return
    sql = text(f"UPDATE app_user SET {', '.join(sets)} WHERE id = :id")
    if "roles" in values:
        sql = sql.bindparams(bindparam("roles", type_=_CODES))
    await conn.execute(sql, {**values, "id": user_id})


async def bump_token_version(conn: AsyncConnection, user_id: int) -> None:
    """Every access token issued so far stops working."""
    await conn.execute(text("UPDATE app_user SET token_version = token_version + 1 WHERE id = :id"), {"id": user_id})


async def set_duty_grids(conn: AsyncConnection, user_id: int, codes: Sequence[str]) -> None:
    """Replace the duty grids of a worker (only the rows that change)."""
    params = {"id": user_id, "codes": list(codes)}
    delete = text("DELETE FROM duty_grid_worker WHERE user_id = :id AND NOT (duty_grid_code = ANY(:codes))")
    insert = text("""
        INSERT INTO duty_grid_worker (duty_grid_code, user_id) SELECT c, :id FROM unnest(:codes) AS c
        ON CONFLICT DO NOTHING
    """)
    await conn.execute(delete.bindparams(bindparam("codes", type_=_CODES)), params)
    if codes:
        await conn.execute(insert.bindparams(bindparam("codes", type_=_CODES)), params)


async def unit_exists(conn: AsyncConnection, code: str) -> bool:
    return bool(await conn.scalar(text("SELECT EXISTS (SELECT 1 FROM unit WHERE code = :c)"), {"c": code}))


async def district_exists(conn: AsyncConnection, code: str) -> bool:
    sql = text("SELECT EXISTS (SELECT 1 FROM region WHERE code = :c AND level = 'district')")
    return bool(await conn.scalar(sql, {"c": code}))


async def missing_duty_grids(conn: AsyncConnection, codes: Sequence[str]) -> list[str]:
    """The codes that name no duty grid."""
    sql = text("SELECT c FROM unnest(:codes) AS c WHERE NOT EXISTS (SELECT 1 FROM duty_grid d WHERE d.code = c)")
    rows = await conn.execute(sql.bindparams(bindparam("codes", type_=_CODES)), {"codes": list(codes)})
    return sorted(r[0] for r in rows)


# ---- sessions (refresh tokens) ----


async def insert_session(
    conn: AsyncConnection, user_id: int, token_hash: str, expires_at: dt.datetime, user_agent: str | None,
    family_id: int | None = None,
) -> None:  # fmt: skip
    """A new refresh token of `family_id`'s chain, or (None) the first of a new login's chain."""
    sql = text("""
        INSERT INTO refresh_token (id, user_id, token_hash, expires_at, user_agent, family_id)
        SELECT n.id, :user_id, :token_hash, :expires_at, :user_agent, coalesce(CAST(:family AS bigint), n.id)
        FROM (SELECT nextval(pg_get_serial_sequence('refresh_token', 'id')) AS id) n
    """)
    params = {
        "user_id": user_id, "token_hash": token_hash, "expires_at": expires_at, "user_agent": user_agent,
        "family": family_id,
    }  # fmt: skip
    await conn.execute(sql, params)


async def rotate_session(conn: AsyncConnection, token_hash: str) -> Any | None:
    """Revoke a live session for rotation (it keeps its expiry); its (user_id, family_id), or None if none was live.

    The compare-and-set makes two concurrent refreshes with one token yield one winner.
    """
    sql = text("""
        UPDATE refresh_token SET revoked_at = now()
        WHERE token_hash = :h AND revoked_at IS NULL AND expires_at > now() RETURNING user_id, family_id
    """)
    return (await conn.execute(sql, {"h": token_hash})).first()


async def rotate_unused_successor(conn: AsyncConnection, session: Any, within_s: int) -> Any | None:
    """For a token rotated at most `within_s` seconds ago (`session`, from `find_session`): revoke the token that
    rotation made, if nobody has used it yet, as rotated (so it counts as reused if it shows up later); its
    (user_id, family_id), or None when it was used, ended, or the rotation is older. The two rows were written in
    one transaction, so the successor's `created_at` is the old token's `revoked_at`."""
    sql = text("""
        UPDATE refresh_token SET revoked_at = now()
        WHERE family_id = :family AND created_at = :rotated_at AND revoked_at IS NULL AND expires_at > now()
          AND CAST(:rotated_at AS timestamptz) >= now() - make_interval(secs => :within)
        RETURNING user_id, family_id
    """)
    params = {"family": session.family_id, "rotated_at": session.revoked_at, "within": within_s}
    return (await conn.execute(sql, params)).first()


async def find_session(conn: AsyncConnection, token_hash: str) -> Any | None:
    """user_id, family_id, revoked_at, expires_at and whether it was rotated (revoked before it expired)."""
    sql = text("""
        SELECT user_id, family_id, revoked_at, expires_at,
               (revoked_at IS NOT NULL AND revoked_at < expires_at) AS rotated
        FROM refresh_token WHERE token_hash = :h
    """)
    return (await conn.execute(sql, {"h": token_hash})).first()


async def end_session(conn: AsyncConnection, token_hash: str) -> int | None:
    """Revoke one session for good (logout): its expiry moves to now, which tells it apart from a rotated one."""
    sql = text("""
        UPDATE refresh_token SET revoked_at = now(), expires_at = LEAST(expires_at, now())
        WHERE token_hash = :h AND revoked_at IS NULL RETURNING user_id
    """)
    user_id: int | None = await conn.scalar(sql, {"h": token_hash})
    return user_id


_END = {
    column: text(f"""
        UPDATE refresh_token SET revoked_at = now(), expires_at = LEAST(expires_at, now())
        WHERE {column} = :value AND revoked_at IS NULL
    """)
    for column in ("user_id", "family_id")
}


async def end_family(conn: AsyncConnection, family_id: int) -> int:
    """Revoke every live token of one login's chain; how many there were."""
    return int((await conn.execute(_END["family_id"], {"value": family_id})).rowcount or 0)


async def end_all_sessions(conn: AsyncConnection, user_id: int) -> int:
    """Revoke every live session of a user; how many there were."""
    return int((await conn.execute(_END["user_id"], {"value": user_id})).rowcount or 0)
