"""Tests of notifications: the outbox, signed webhooks, the live event stream."""
