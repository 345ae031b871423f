"""Developer tools: offline manifest validation, the pinned kubectl install, image builds."""
