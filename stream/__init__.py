"""upsell-stream: exactly-once aggregation of subscription-upsell events, Kafka to Redis."""

# The one place of the version: pyproject.toml reads it (setuptools' dynamic version),
# `upsell-stream --version`, the worker's /v1/openapi.json and upsell_worker_info report it, and
# tests/unit/test_version.py checks that deploy/Dockerfile's image label and the Kubernetes image
# tag agree with it. CHANGELOG.md has a section for it.
__version__ = "0.1.0"
