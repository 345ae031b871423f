"""Offline evaluation: metric functions and per-step evaluators."""
