"""Underground pipelines (地下管线) of every kind, with owner and maintainer."""
