"""Accounts and access: login sessions, bearer-token authentication, and the administration of users."""
