"""Every helper the tests share: worker and broker plumbing, event factories, the reference
aggregator, fault injectors. Tests import from here, never from a test module or a conftest
(an import-linter contract in pyproject.toml checks it); fixtures stay in the conftest files."""
