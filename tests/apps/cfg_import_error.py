"""A module that raises while being imported."""
raise RuntimeError("cfg module exploded at import")
