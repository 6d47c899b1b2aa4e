"""The benchmark: how close the processor gets to what the API allows."""
