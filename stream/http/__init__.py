"""The last step of the flow: the HTTP application of a worker and of an ``api`` process (its
/v1 API, the dashboard, the readiness of each), reading only Redis. What every server shares
(errors, request metrics, /healthz, /readyz, /metrics, serving) is stream.web, below it.
"""
