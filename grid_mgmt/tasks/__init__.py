"""Task inboxes (what the caller must do now) and the delta sync of an offline-first phone."""
