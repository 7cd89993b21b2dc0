"""Deadlines: working-time arithmetic and the limits of the class dictionary."""
