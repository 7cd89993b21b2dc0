"""Patrol shifts of grid workers: GPS points, the timed track, distance, grids visited and check-ins."""
