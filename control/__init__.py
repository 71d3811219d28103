"""The control plane: the admin API (models, stages, traffic policy, audit trail) as a
FastAPI application, served on its own port by its own listener in a Ray Serve replica
(:mod:`control.server`, with the data plane's TLS), never on the data-plane path. It calls
the same library functions as the CLI (:mod:`registry`, :mod:`access`)."""
