"""The Traefik front-end: its Kubernetes Ingress provider's semantics, rule text and priority,
and the annotations it owns (traefik.ingress.kubernetes.io/*), compiled into the routing IR."""
