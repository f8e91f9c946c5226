"""A module whose own import of a dependency fails."""
import cfg_no_such_dependency_xyz  # noqa: F401

app = None
