"""The background service (`crmsync run`): scheduled syncs and workflows under a lease, with
health checks and Prometheus metrics over HTTP."""
