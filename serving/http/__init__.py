"""HTTP transport: a raw ASGI app (no framework on the hot path) and its server."""
