"""Services around the flow: start-up, settings bootstrap, the Faust agents that keep shop
settings and subscriber counts in Redis, the retention sweep and the dead-letter producer.
"""
