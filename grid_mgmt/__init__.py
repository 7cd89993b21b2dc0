"""grid-mgmt: the backend of a city's grid-based urban management (数字化城市管理)."""

__version__ = "0.1.0"
