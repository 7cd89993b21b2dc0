"""Bulk import of city layers (regions, grids, components, pipelines, units) from GIS files into PostGIS."""
