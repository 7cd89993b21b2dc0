"""arq worker processes: WorkerSettings and thin job functions that call grid_mgmt services."""
