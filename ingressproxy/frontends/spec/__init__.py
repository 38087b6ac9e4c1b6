"""The Ingress spec front-end: the Kubernetes rules (classes, Exact/Prefix matching, the
longest path wins, conflicts by age) as an engine the other Ingress dialects parametrize."""
