"""ingressproxy: a reverse proxy that routes HTTP by Kubernetes Ingress manifests, no cluster.

Data flow: files -> loader -> decode (model) -> compiler -> route table -> proxy -> response.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
