"""Accounts and API tokens of the authenticated API; every change is itself an event on the log."""

from . import service
from .service import *  # noqa: F403 (the service module's public names are this package's)

__all__ = service.__all__
