"""Structs of Open311 GeoReport v2 (field names as the spec spells them) and of the api key administration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from grid_mgmt.lib.schemas import Schema


class EndpointRead(Schema, kw_only=True):
    """One API endpoint of the discovery document."""

    specification: str
    url: str
    changeset: dt.datetime | None
    type: str
    formats: list[str]


class DiscoveryRead(Schema, kw_only=True):
    """The service discovery document: where the GeoReport v2 endpoint is and whom to ask."""

    changeset: dt.datetime | None
    """When the class dictionary last changed."""
    contact: str
    key_service: str
    endpoints: list[EndpointRead]


class ServiceRead(Schema, kw_only=True):
    """A service: a class of the dictionary that citizens may report."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    """True when the class asks questions: `GET services/{service_code}` lists them."""
    type: str
    keywords: str
    group: str


class AttributeValueRead(Schema, kw_only=True):
    key: str
    name: str


class AttributeRead(Schema, kw_only=True):
    """A question of a service (answered as `attribute[code]` when posting a request)."""

    variable: bool
    code: str
    datatype: str
    """string, number, datetime, text, singlevaluelist or multivaluelist."""
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValueRead]


class ServiceDefinitionRead(Schema, kw_only=True):
    service_code: str
    attributes: list[AttributeRead]


class NoteRead(Schema, kw_only=True):
    """A step of the public timeline (extensions=true): no personal data, no staff."""

    datetime: dt.datetime
    type: str
    """opened, verified, accepted, assigned, in_progress, resolved, activity, overdue, reopened or closed."""
    summary: str


class ExtendedAttributesRead(msgspec.Struct):
    """What GeoReport v2 has no field for (extensions=true); positional, as ServiceRequestRead."""

    detailed_status: str
    """The case's own status: verifying, reported, registered, dispatched, handling, handled, checking, checked,
    shelved, closed, rejected, declined or cancelled."""
    stage: str | None
    urgency: str
    source: str
    """How the case came in: citizen, worker, hotline, video, inspection or leader."""
    group: str
    overdue: bool
    """The running deadline has passed."""
    closed_datetime: dt.datetime | None


class ServiceRequestRead(msgspec.Struct):
    """A service request (a case of a public class). `extended_attributes` and `notes` only with extensions=true.

    Positional (not keyword-only like the other structs): a page builds 1,000 of them from database rows.
    Datetimes are ISO 8601 in UTC (`2026-03-01T00:00:00Z`).
    """

    service_request_id: str
    """The case number."""
    status: str
    """open or closed (the detailed status is in extended_attributes)."""
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    """The handling unit the case is with."""
    service_notice: str | None
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime
    expected_datetime: dt.datetime | None
    """The deadline of the current stage."""
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None
    extended_attributes: ExtendedAttributesRead | msgspec.UnsetType = msgspec.UNSET
    notes: list[NoteRead] | msgspec.UnsetType = msgspec.UNSET


class PostedRead(Schema, kw_only=True):
    """The answer to a posted request: its id and its token (the citizen's public tracking code)."""

    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None


class TokenRead(Schema, kw_only=True):
    """The service request a token belongs to (a merged report answers the request it was merged into)."""

    service_request_id: str
    token: str


class Open311ErrorRead(Schema, kw_only=True):
    """One error; Open311 answers a list of them."""

    code: int
    description: str


# ---- api keys (admin API and CLI) ----------------------------------------------------------------------------


class Open311KeyCreate(Schema, kw_only=True, forbid_unknown_fields=True):
    """A new api_key for an Open311 client."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    """Who uses it (the client application or its operator)."""


class Open311KeyRead(Schema, kw_only=True):
    """An api_key without its secret (only its first characters, to tell keys apart)."""

    id: int
    name: str
    key_prefix: str
    active: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class Open311KeyCreatedRead(Open311KeyRead, kw_only=True):
    """A new api_key: `key` is shown only in this answer (only its sha256 is stored)."""

    key: str
