"""Persistence: engine and sessions, the declarative models and the Alembic migrations."""
