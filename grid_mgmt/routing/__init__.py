"""Who handles a case: components, pipelines, routing rules and the territory; duplicates; the rules API."""
