"""Options: declared once in settings.py, merged and validated in config.py."""
from .config import Config, ConfigError

__all__ = ["Config", "ConfigError"]
