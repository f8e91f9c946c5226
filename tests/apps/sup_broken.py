"""An app module that cannot be imported: every fresh worker fails to load it."""
raise RuntimeError("sup_broken cannot start: the database URL is missing")
