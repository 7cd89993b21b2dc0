"""A sweep of malformed input to the public and Open311 endpoints: each gets a 4xx that says what is wrong, never a
500 (the specific answers are asserted in the other tests of tests/public and tests/open311)."""

from __future__ import annotations

from typing import Any

import pytest

CASES = [
    ("GET", "/api/v1/public/reports/" + "A" * 5000, None, None),
    ("GET", "/api/v1/public/reports/%00%00", None, None),
    ("POST", "/api/v1/public/reports", {"category_code": None, "lon": 1, "lat": 2}, None),
    ("POST", "/api/v1/public/reports", {"category_code": "E0103", "lon": "x", "lat": 2}, None),
    ("POST", "/api/v1/public/reports", {"category_code": "E0103", "lon": 1e308, "lat": -1e308}, None),
    ("POST", "/api/v1/public/reports", {"category_code": "E0103", "lon": 110.3, "lat": 32.3, "crs": "xyz"}, None),
    ("POST", "/api/v1/public/reports", [1, 2, 3], None),
    ("GET", "/api/v1/public/nearby?lon=abc&lat=1&class=E0103", None, None),
    ("GET", "/api/v1/public/nearby?lon=110.3&lat=32.3&class=E0103&radius=nan", None, None),
    ("GET", "/api/v1/public/nearby?lon=110.3&lat=32.3&class=E0103&radius=-5", None, None),
    ("GET", "/open311/v2/requests.json?lat=91&long=200&radius=10", None, None),
    ("GET", "/open311/v2/requests.json?start_date=2026-13-45", None, None),
    ("GET", "/open311/v2/requests.json?page=-1", None, None),
    ("GET", "/open311/v2/requests.json?page=99999999999999999999", None, None),
    ("GET", "/open311/v2/requests.json?bbox=1,2,3", None, None),
    ("GET", "/open311/v2/requests/" + "9" * 500 + ".json", None, None),
    ("POST", "/open311/v2/requests.json", None, "api_key=demo-open311-key&service_code=E0103&lat=nan&long=110"),
    (
        "POST",
        "/open311/v2/requests.json",
        None,
        "api_key=demo-open311-key&service_code=E0103&lat=32.3&long=110.3&attribute[x]=" + "y" * 10000,
    ),
    ("GET", "/api/v1/cases/1/contact", None, None),
]


@pytest.mark.parametrize(("method", "path", "body", "form"), CASES)
async def test_malformed_input_is_a_4xx_naming_the_problem(
    client: Any, method: str, path: str, body: Any, form: Any
) -> None:
    if method == "GET":
        r = await client.get(path)
    elif form is not None:
        form_type = {"content-type": "application/x-www-form-urlencoded"}
        r = await client.post(path, content=form.encode(), headers=form_type)
    else:
        r = await client.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.text.strip() and ("detail" in r.text or "description" in r.text), r.text
