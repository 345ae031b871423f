"""Developer tools: offline manifest validation, a kustomize subset, image builds."""
