"""What the proxy reports about requests: records, the access log, Prometheus metrics."""
