"""``--env-file PATH``: KEY=VALUE lines put into the environment before the config is read.

uvicorn's option (it calls python-dotenv's ``load_dotenv``); this is a small reader of the
same format, so Gannet needs no extra dependency:

- blank lines and ``#`` comments are skipped; a line may start with ``export``;
- ``KEY=value`` (spaces around ``=`` allowed); an unquoted value ends at `` #``;
- ``'single quotes'`` are literal but for ``\\'`` and ``\\\\`` (what python-dotenv's own
  ``set_key`` writes); ``"double quotes"`` understand ``\\n \\t \\r \\" \\' \\\\ \\a \\b \\f
  \\v``; a quoted value may span lines;
- a line with a name alone (``KEY``) sets nothing, as in python-dotenv;
- ``${NAME}`` and ``${NAME:-default}`` in unquoted and double-quoted values expand from
  the environment, then the file's earlier lines (as python-dotenv does).

Variables already in the environment win over the file (python-dotenv's default), so a
deployment can override one value without editing the file. The server process reads the
file once; anything it starts inherits the variables, and so does the app.
A line that is none of the above is an error naming ``file:line`` and, once known, the
variable, never the line's text: a broken line is as likely to hold a secret as any other.
"""
from __future__ import annotations

import os
import re
from typing import Mapping, MutableMapping

__all__ = ["EnvFileError", "parse_env_file", "load_env_file"]

_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)\Z", re.DOTALL)
_EXPANSION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_ALONE = re.compile(r"(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\Z")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v"}
_SINGLE_ESCAPES = {"'": "'", "\\": "\\"}


class EnvFileError(ValueError):
    """A file that cannot be read, or a line that is not KEY=VALUE; names the place."""


def parse_env_file(path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every assignment in the file, in order, expansions resolved against ``environ``
    (os.environ by default) and then the file's earlier values."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise EnvFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"{path}: cannot read it: {exc}") from None
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        number = index + 1
        text = lines[index].strip()
        index += 1
        if not text or text.startswith("#"):
            continue
        match = _ASSIGNMENT.match(text)
        if match is None:
            if _NAME_ALONE.match(text):
                continue
            raise EnvFileError(f"{path}:{number}: expected KEY=VALUE (the line is not shown: "
                               "it may hold a secret)")
        key, raw = match.groups()
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            # A quoted value may continue on the following lines until its closing quote.
            while _closing_quote(raw, quote) < 0 and index < len(lines):
                raw += "\n" + lines[index]
                index += 1
            end = _closing_quote(raw, quote)
            if end < 0:
                raise EnvFileError(f"{path}:{number}: {key}: no closing {quote}")
            rest = raw[end + 1:].strip()
            if rest and not rest.startswith("#"):
                raise EnvFileError(f"{path}:{number}: {key}: unexpected text after the "
                                   "closing quote (not shown: it may be part of a secret)")
            body = raw[1:end]
            if quote == "'":
                values[key] = _unescape(body, _SINGLE_ESCAPES)
                continue
            value = _expand(_unescape(body), values, environ)
        else:
            value = _expand(re.split(r"\s+#", raw, maxsplit=1)[0].strip(), values, environ)
        values[key] = value
    return values


def load_env_file(path: str, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put the file's variables into ``environ`` (os.environ by default) where not set
    already; returns the names it set."""
    target = os.environ if environ is None else environ
    added = []
    for key, value in parse_env_file(path, target).items():
        if key not in target:
            target[key] = value
            added.append(key)
    return added


def _closing_quote(raw: str, quote: str) -> int:
    """Index of the quote that closes ``raw`` (which starts with it), or -1."""
    position = 1
    while position < len(raw):
        char = raw[position]
        if char == "\\":  # python-dotenv escapes in both quotes (\\' \\\\ in single ones)
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return -1


def _unescape(body: str, escapes: dict[str, str] = _ESCAPES) -> str:
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), "\\" + m.group(1)), body,
                  flags=re.DOTALL)


def _expand(value: str, earlier: dict[str, str], environ: Mapping[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        # The environment wins over the file here too, as in python-dotenv.
        found = environ.get(name, earlier.get(name))
        return found if found is not None else (default or "")

    return _EXPANSION.sub(replace, value)
