"""Files -> YAML with line numbers -> decoded, validated Kubernetes objects; last good kept."""
