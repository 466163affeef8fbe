"""/sso/{tenant}: SAML sign-in for the people of a tenant (web side)."""
