"""Batch scoring on Ray Data with the same validation, preprocessing and runner as serving.

Entry points: ``batch.run.score`` (on Ray), ``batch.run.score_in_process`` (no Ray),
``python -m batch`` (``mlgate score`` as a Ray job). Kept import-light: ``mlgate.config``
imports ``batch.config``.
"""
