"""All tables, imported here so Alembic and the app see one complete MetaData."""

from grid_mgmt.db.models.account import IdempotencyKey, RefreshToken
from grid_mgmt.db.models.case import Attachment, Case, CaseActivity
from grid_mgmt.db.models.category import Category
from grid_mgmt.db.models.city import DutyGrid, DutyGridGrid, DutyGridWorker, Grid, Region
from grid_mgmt.db.models.component import Component, Pipeline
from grid_mgmt.db.models.patrol import CheckIn, Patrol, PatrolPoint
from grid_mgmt.db.models.public import CaseContact, Open311Key, PublicReport
from grid_mgmt.db.models.unit import Unit
from grid_mgmt.db.models.user import User
from grid_mgmt.db.models.work import CalendarDay, Outbox, RoutingRule

__all__ = [
    "Attachment",
    "CalendarDay",
    "Case",
    "CaseActivity",
    "CaseContact",
    "Category",
    "CheckIn",
    "Component",
    "DutyGrid",
    "DutyGridGrid",
    "DutyGridWorker",
    "Grid",
    "IdempotencyKey",
    "Open311Key",
    "Outbox",
    "Patrol",
    "PatrolPoint",
    "Pipeline",
    "PublicReport",
    "RefreshToken",
    "Region",
    "RoutingRule",
    "Unit",
    "User",
]
