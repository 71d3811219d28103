"""The control plane: the admin API (models, stages, traffic policy, audit trail) as a
FastAPI application, served by Ray Serve's HTTP proxy on its own port, never on the
data-plane path. It calls the same library functions as the CLI (:mod:`registry`,
:mod:`access`)."""
