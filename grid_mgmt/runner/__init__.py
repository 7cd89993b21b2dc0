"""Run the system locally: find or start PostgreSQL/PostGIS and Redis, migrate, seed, start API and worker."""
