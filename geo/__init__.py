"""Spatial toolkit: CRS conversion, input validation, GeoJSON, PostGIS SQL helpers and file loaders."""
