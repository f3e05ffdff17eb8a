"""Lifecycle services around the flow: start-up, settings bootstrap, the retention sweep and the
dead-letter producer.
"""
