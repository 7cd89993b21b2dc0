"""Intake: reports from phones and the centre (single, batched offline queues), photos, idempotent replays."""
