"""Development tooling: the embedded broker and Redis, the demo traffic, worker subprocesses and
offline helpers for tests and the bench. Nothing on the worker's path imports it.
"""
