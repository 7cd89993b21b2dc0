"""GET /api/v1/me/tasks: the queues of each role, their contents, order, counts and the actions offered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.testing import AsyncTestClient

from grid_mgmt.tasks.service import allowed_actions, statuses_for
from tests.search.conftest import World

Headers = Callable[..., Awaitable[dict[str, str]]]


async def queues(client: AsyncTestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = await client.get("/api/v1/me/tasks", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    return {q["name"]: q for q in body}


def ids_of(queue: dict[str, Any]) -> list[int]:
    return [c["id"] for c in queue["items"]]


async def test_worker_verifies_in_their_grids_and_checks_what_is_theirs(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    got = await queues(client, await auth_headers("worker1"))
    assert set(got) == {"verify", "check"}
    assert world.ids["verifying"] in ids_of(got["verify"])
    check = ids_of(got["check"])
    assert world.ids["checking_assigned"] in check  # assigned to worker1, outside their grids
    assert world.ids["checking_open"] in check  # nobody assigned, in their grid
    assert world.ids["checking_other"] not in check  # worker2 checks it
    for case in got["check"]["items"]:
        assert case["status"] == "checking"
        assert set(case["next_actions"]) == {"check_pass", "check_fail"}
    assert got["check"]["count"] >= 2 and got["check"]["capped"] is False


async def test_another_worker_does_not_get_worker1s_tasks(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    got = await queues(client, await auth_headers("worker2"))
    assert world.ids["checking_other"] in ids_of(got["check"])  # assigned to worker2
    assert world.ids["checking_assigned"] not in ids_of(got["check"])
    assert world.ids["verifying"] not in ids_of(got["verify"])


async def test_unit_queue_is_the_subtree_overdue_first(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    got = await queues(client, await auth_headers("unit-U01"))
    assert set(got) == {"unit"}
    unit = ids_of(got["unit"])
    assert world.ids["handling_late"] in unit and world.ids["dispatched"] in unit
    assert world.ids["handling_other_unit"] not in unit  # U02 is not below U01
    assert unit.index(world.ids["handling_late"]) < unit.index(world.ids["dispatched"])
    assert got["unit"]["overdue"] >= 1
    by_id = {c["id"]: c for c in got["unit"]["items"]}
    assert by_id[world.ids["dispatched"]]["next_actions"] == ["acknowledge", "forward", "send_back"]
    assert {c["status"] for c in got["unit"]["items"]} <= {"dispatched", "handling"}


async def test_centre_queues_by_role(client: AsyncTestClient, world: World, auth_headers: Headers) -> None:
    acceptor = await queues(client, await auth_headers("acceptor1"))
    assert set(acceptor) == {"to_register", "overdue"}
    assert world.ids["reported"] in ids_of(acceptor["to_register"])
    assert world.ids["elsewhere"] not in ids_of(acceptor["to_register"])  # another district
    assert all(c["next_actions"] == ["merge", "register", "reject"] for c in acceptor["to_register"]["items"])

    dispatcher = await queues(client, await auth_headers("dispatcher1"))
    assert set(dispatcher) == {"to_dispatch", "to_request_check", "overdue"}
    assert world.ids["registered_late"] in ids_of(dispatcher["to_dispatch"])
    assert world.ids["handled"] in ids_of(dispatcher["to_request_check"])
    overdue = ids_of(dispatcher["overdue"])
    assert world.id("registered_late", "handling_other_unit", "handling_late") <= set(overdue)
    assert not world.id("elsewhere", "shelved", "closed_mine", "dispatched") & set(overdue)
    assert dispatcher["to_dispatch"]["items"][0]["next_actions"] == ["dispatch", "merge"]

    leader = await queues(client, await auth_headers("leader1"))
    assert set(leader) == {"to_register", "to_dispatch", "to_request_check", "to_close", "overdue"}
    assert world.ids["checked"] in ids_of(leader["to_close"])
    assert "close" in leader["to_close"]["items"][0]["next_actions"]


async def test_supervisor_sees_overdue_everywhere(client: AsyncTestClient, world: World, auth_headers: Headers) -> None:
    got = await queues(client, await auth_headers("supervisor1"))
    assert set(got) == {"overdue"}
    assert world.ids["elsewhere"] in ids_of(got["overdue"])
    assert all(c["next_actions"] == [] or "urge" in c["next_actions"] for c in got["overdue"]["items"])


async def test_queues_are_ordered_by_deadline_and_counted(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    got = await queues(client, await auth_headers("leader1"))
    for queue in got.values():
        deadlines = [c["deadline"] for c in queue["items"]]
        present = [d for d in deadlines if d is not None]
        assert present == sorted(present) and deadlines[: len(present)] == present
        assert queue["count"] >= len(queue["items"]) and queue["overdue"] <= queue["count"]
        assert queue["title"]


def test_queues_follow_the_lifecycle_table() -> None:
    assert statuses_for("dispatch") == ["registered"]
    assert statuses_for("acknowledge") == ["dispatched"]
    assert allowed_actions("registered", frozenset({"dispatcher"})) == ["dispatch", "merge"]
    assert allowed_actions("registered", frozenset({"leader"})) == ["cancel", "dispatch", "merge", "shelve"]
    assert allowed_actions("closed", frozenset({"worker"})) == []


async def test_tasks_need_a_login(client: AsyncTestClient) -> None:
    assert (await client.get("/api/v1/me/tasks")).status_code == 401
