"""The last step of the flow: the HTTP server, its /v1 API, the dashboard and the operational
routes, reading only Redis.
"""
