"""Notifications: the transactional outbox, signed webhooks to units, and the live event stream for consoles."""
