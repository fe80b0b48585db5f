"""Settings and default configuration of `digest`."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
