"""Cross-cutting pieces: errors, schema base, pagination, the generic layer reader."""
