"""The class dictionary of components and events, with criteria and time limits."""
