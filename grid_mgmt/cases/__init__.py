"""Cases: the lifecycle in one place, actions with compare-and-set, the timeline, reading."""
