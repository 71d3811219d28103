"""Typed configuration of access control (composed into ``serving.auth`` of ``mlgate.config``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JwtConfig(_Strict):
    """JWTs from an OAuth2/OIDC provider, verified against its JWKS (off while neither
    ``jwks_file`` nor ``jwks_url`` is set)."""

    jwks_file: str | None = Field(default=None, description="JWKS as a local JSON file (re-read when it changes)")
    jwks_url: str | None = Field(default=None, description="JWKS URL of the provider (fetched by a background "
                                 "thread every jwks_cache_s, and soon after a token names an unknown key id, "
                                 "at most once per jwks_min_refetch_s; that token is refused meanwhile)")
    issuer: str | None = Field(default=None, description="Required 'iss' claim (required when JWTs are on)")
    audience: str | None = Field(default=None, description="Required 'aud' claim (required when JWTs are on)")
    algorithms: tuple[str, ...] = Field(default=("RS256", "ES256", "PS256", "EdDSA"),
                                        description="Signature algorithms accepted (asymmetric only)")
    scopes_claim: str = Field(default="scope", description="Claim holding the scopes: a space-separated "
                              "string (OAuth2 'scope') or a list; dotted for nested claims (realm_access.roles)")
    subject_claim: str = Field(default="sub", description="Claim naming the identity")
    leeway_s: float = Field(default=30.0, ge=0, le=600, description="Clock skew allowed on exp/nbf/iat")
    jwks_cache_s: float = Field(default=300.0, gt=0, description="How often jwks_url is fetched again")
    jwks_min_refetch_s: float = Field(default=10.0, ge=0, description="Least time between two fetches of "
                                      "jwks_url (an unknown kid cannot make mlgate hammer the provider)")

    @property
    def enabled(self) -> bool:
        return bool(self.jwks_file or self.jwks_url)

    @model_validator(mode="after")
    def _claims_required(self) -> JwtConfig:
        if self.enabled and not (self.issuer and self.audience):
            raise ValueError("issuer and audience are required with jwks_file or jwks_url")
        if self.jwks_file and self.jwks_url:
            raise ValueError("set jwks_file or jwks_url, not both")
        if any(a.upper().startswith("HS") or a.lower() == "none" for a in self.algorithms):
            raise ValueError("algorithms: only asymmetric algorithms (RS*, PS*, ES*, EdDSA)")
        return self


class RateLimitConfig(_Strict):
    """Requests per identity, per replica (a token bucket): beyond it 429 with Retry-After."""

    requests_per_s: float = Field(default=0.0, ge=0, description="Sustained requests per second per identity "
                                  "on each replica; 0: no limit (a key's own --rate-limit still applies)")
    burst: int = Field(default=0, ge=0, description="Requests an identity may send at once; 0: 2 x "
                       "requests_per_s (at least 1)")


class AuthConfig(_Strict):
    enabled: bool = Field(default=True, description="Require credentials (Authorization: Bearer) on every "
                          "route but health and readiness; false only on a private network")
    keys_file: str = Field(default="var/auth/keys.json", description="API keys mlgate issued (hashes only)")
    admin_key_file: str = Field(default="var/auth/admin.key", description="The admin key mlgate up creates "
                                "when none exists (mode 0600); the CLI's credential when MLGATE_TOKEN is unset")
    reload_interval_s: float = Field(default=1.0, gt=0, le=60, description="How often replicas look for "
                                     "changes to keys_file (a revocation takes effect within this)")
    jwt: JwtConfig = Field(default_factory=JwtConfig, description="JWTs from an OAuth2/OIDC provider")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig, description="Request rate per identity")
