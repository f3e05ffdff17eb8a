"""upsell-stream: exactly-once aggregation of subscription-upsell events, Kafka to Redis."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("upsell-stream")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
