"""Open311 GeoReport v2 at /open311/v2: services from the class dictionary, service requests from cases, api keys."""
