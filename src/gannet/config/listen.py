"""Where to listen when several sources name it: one choice, never silently dropped.

``--host/--port``, ``-b/--bind``, ``--uds`` and ``--fd`` are four ways of saying one thing.
Each source (config file < environment < command line) may say it, and a demanding user
must never find one of them quietly ignored, so:

- the highest source that names any listen option decides *how* Gannet listens; listen
  options of another kind from lower sources are dropped, and a note says so ("--port
  (command line) overrides GANNET_BIND (environment)");
- ``--host`` and ``--port`` still combine per option across sources (``GANNET_HOST=0.0.0.0``
  in an image plus ``--port 9000`` on the command line listens on 0.0.0.0:9000);
- two kinds from the same source (``--uds`` with ``-b``, ``GANNET_FD`` with
  ``GANNET_HOST``) contradict each other: an error naming both.
"""
from __future__ import annotations

from typing import Any

from .settings import BY_NAME

__all__ = ["LISTEN_OPTIONS", "resolve_listen"]

LISTEN_OPTIONS = {"host": "tcp", "port": "tcp", "bind": "bind", "uds": "uds", "fd": "fd"}
_RANK = {"argument": 3, "env": 2, "file": 1}


def _level(source: str) -> str:
    return source.split(" ", 1)[0]


def describe(name: str, source: str) -> str:
    """How the user spelt this option in that source: --port, GANNET_PORT, port in x.toml."""
    setting = BY_NAME[name]
    level = _level(source)
    if level == "argument":
        long_flags = [flag for flag in setting.flags if flag.startswith("--")]
        return f"{long_flags[0] if long_flags else setting.display} (command line)"
    if level == "env":
        return f"{setting.env_var} (environment)"
    return f"{name} ({source.split(' ', 1)[1] if ' ' in source else 'config file'})"


def resolve_listen(values: dict[str, Any], sources: dict[str, str]) -> list[str]:
    """Drop the listen options the highest source overrides (back to their defaults, in
    place) and return the notes saying so; raise ValueError on a same-source conflict."""
    given = [name for name in LISTEN_OPTIONS
             if _level(sources[name]) in _RANK and not (name == "bind" and not values[name])]
    if not given:
        return []
    top = max(_RANK[_level(sources[name])] for name in given)
    winners = [name for name in given if _RANK[_level(sources[name])] == top]
    kinds = {LISTEN_OPTIONS[name] for name in winners}
    if len(kinds) > 1:
        one = winners[0]
        other = next(name for name in winners if LISTEN_OPTIONS[name] != LISTEN_OPTIONS[one])
        first, second = describe(one, sources[one]), describe(other, sources[other])
        raise ValueError(f"{first} and {second} both say where to listen; give one of "
                         "them (-b is repeatable: -b HOST:PORT -b unix:PATH -b fd://N)")
    kind = kinds.pop()
    dropped = [name for name in given if name not in winners and LISTEN_OPTIONS[name] != kind]
    if not dropped:
        return []
    note = (", ".join(describe(name, sources[name]) for name in winners) + " overrides "
            + ", ".join(describe(name, sources[name]) for name in dropped))
    for name in dropped:
        values[name] = _default(name)
        sources[name] = "default"
    return [note]


def _default(name: str) -> Any:
    default = BY_NAME[name].default
    return list(default) if isinstance(default, list) else default
