"""The HTTP query API (contract §4)."""

from stream.http.api.routes import install_api

__all__ = ["install_api"]
