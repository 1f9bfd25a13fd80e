"""Process-wide observability plumbing: the metrics endpoint, logging and tracing setup.

A foundation (bottom layer): it knows nothing of pipelines, only how a process exposes what
the layers above measure.
"""
