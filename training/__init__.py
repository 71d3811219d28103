"""Training sidecar: data splits, preprocessing fit, Ray Train jobs, evaluation gate.

Importing this package does not import Ray; the Ray parts live in their own modules.
"""
