"""Deleting citizens' contact details whose retention has passed, in short batches (a nightly worker job)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.lib.retention import BATCH, purge_before
from grid_mgmt.lib.sql import text

# purge_before fixes :cutoff once, at now - 1 day (it counts whole days of age); + 1 day makes it "now", so the loop
# deletes every contact whose purge_after had passed when the job started, and ends even while more come due.
_PURGE = text("""
DELETE FROM case_contact k
USING (SELECT case_id FROM case_contact
       WHERE purge_after <= CAST(:cutoff AS timestamptz) + interval '1 day' LIMIT :batch) due
WHERE k.case_id = due.case_id
""")


async def purge_contacts(engine: AsyncEngine, *, batch: int = BATCH) -> int:
    """Delete the contact rows whose `purge_after` (report + GRID_CONTACT_RETENTION_DAYS) has passed; how many went.

    The report, its case and its public timeline stay: only the way to reach the citizen goes.
    """
    return await purge_before(engine, _PURGE, 1, batch=batch)
