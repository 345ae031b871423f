"""KServe model servers (one per InferenceService) and the feedback service, wrapping `naviyam/`."""
