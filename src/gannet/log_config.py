"""Read a user's --log-config file (dictConfig JSON/YAML, or fileConfig .ini/.conf)."""
from __future__ import annotations

import json
import logging.config

__all__ = ["load_log_config"]


def load_log_config(path: str) -> None:
    lower = path.lower()
    if lower.endswith(".json"):
        with open(path, encoding="utf-8") as handle:
            logging.config.dictConfig(json.load(handle))
    elif lower.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError("--log-config: a YAML file needs PyYAML (pip install pyyaml)") from None
        with open(path, encoding="utf-8") as handle:
            logging.config.dictConfig(yaml.safe_load(handle))
    else:
        logging.config.fileConfig(path, disable_existing_loggers=False)
