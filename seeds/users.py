"""Demo users for every role: centre staff, one grid worker per duty grid (some with a second), unit staff."""

from __future__ import annotations

from typing import Any

from seeds.params import CityParams, load_json, rng

#: Every demo user's password (hashed once at load time).
DEMO_PASSWORD = "demo"

#: Centre roles: (username, role, display name, what the login is for).
CENTRE_USERS = (
    ("admin", "admin", "系统管理员", "administration: users, class dictionary, city layers"),
    ("acceptor1", "acceptor", "受理员", "accept citizen reports and hotline calls (受理)"),
    ("leader1", "leader", "值班长", "register and close cases (立案 / 结案)"),
    ("dispatcher1", "dispatcher", "派遣员", "dispatch cases to handling units (派遣)"),
    ("supervisor1", "supervisor", "监督指挥中心主任", "supervise, urge and evaluate (督办 / 综合评价)"),
)
#: Every fifth duty grid gets a second worker.
SECOND_WORKER_EVERY = 5

USER_COLUMNS = ("username", "display_name", "roles", "unit_code", "district_code", "phone", "active")


def _person_names(params: CityParams, n: int) -> list[str]:
    names = load_json("names.json")
    r = rng(params, 8)
    surnames: list[str] = names["surnames"]
    given: list[str] = names["given_names"]
    s = r.integers(len(surnames), size=n).tolist()
    g = r.integers(len(given), size=n).tolist()
    return [surnames[a] + given[b] for a, b in zip(s, g, strict=True)]


def build_users(
    params: CityParams, district_code: str, duty_grids: list[dict[str, Any]], units: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Users (without password hashes) and (duty grid code, username) assignments.

    `units` is (code, name) of every handling unit; each gets a `unit-<code>` staff login.
    """
    users: list[dict[str, Any]] = []
    for username, role, display, _ in CENTRE_USERS:
        users.append(_user(username, display, [role], None, district_code))
    n_duty = len(duty_grids)
    extra = list(range(0, n_duty, SECOND_WORKER_EVERY))
    people = _person_names(params, n_duty + len(extra))
    assignments: list[tuple[str, str]] = []
    for i, duty in enumerate(duty_grids):
        username = f"worker{i + 1}"
        users.append(_user(username, f"{people[i]}（网格员）", ["worker"], None, district_code))
        assignments.append((duty["code"], username))
    for j, i in enumerate(extra):
        username = f"worker{n_duty + j + 1}"
        users.append(_user(username, f"{people[n_duty + j]}（网格员）", ["worker"], None, district_code))
        assignments.append((duty_grids[i]["code"], username))
    for code, name in units:
        users.append(_user(f"unit-{code}", f"{name}值班员", ["unit_staff"], code, None))
    return users, assignments


def _user(username: str, display: str, roles: list[str], unit: str | None, district: str | None) -> dict[str, Any]:
    return {
        "username": username,
        "display_name": display,
        "roles": roles,
        "unit_code": unit,
        "district_code": district,
        "phone": None,
        "active": True,
    }


def demo_logins(
    duty_grids: list[dict[str, Any]] | None = None, units: list[tuple[str, str]] | None = None
) -> list[tuple[str, str, str]]:
    """(username, role, what for) of the logins worth showing in a README or startup banner."""
    out = [(u, role, why) for u, role, _, why in CENTRE_USERS]
    for i in range(2):
        where = duty_grids[i]["name"] if duty_grids and i < len(duty_grids) else f"duty grid {i + 1}"
        out.append((f"worker{i + 1}", "worker", f"grid worker patrolling {where}: report, verify, check"))
    preferred = [u for u in units or [] if u[0] in ("U01", "U06")]  # the city bureau and the water company
    shown = preferred or (units or [])[:2] or [("U01", "竹山县城市管理局"), ("U06", "竹山县水务有限公司")]
    for code, name in shown[:2]:
        out.append((f"unit-{code}", "unit_staff", f"staff of {name}: receive and handle dispatched cases"))
    return out


#: The standard banner list (every password is "demo").
DEMO_LOGINS: list[tuple[str, str, str]] = demo_logins()
