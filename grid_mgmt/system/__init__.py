"""Health of the service and its dependencies, and the offline API docs."""
