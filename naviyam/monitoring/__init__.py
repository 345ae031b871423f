"""Monitoring of the served models: live metrics (``live``) and data / prediction drift (``drift``)."""
