"""The ingress-nginx front-end: its routing semantics and the annotations it owns
(nginx.ingress.kubernetes.io/*), compiled into the routing IR."""
