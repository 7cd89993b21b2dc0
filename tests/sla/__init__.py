"""Tests of deadlines: working-time arithmetic, the official calendar and its API."""
