"""Probes do the I/O. Each returns an observation (a step model); none decides what is wrong."""
