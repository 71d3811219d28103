"""Access control: who a request comes from (API keys mlgate issues, JWTs from an OIDC
provider), what it may do (scopes), how often (rate limits), and the audit trail of admin
actions. Sits above ``contracts`` and below the transports and the CLI, which call it at
their edge; it imports nothing of serving, training or monitoring."""
