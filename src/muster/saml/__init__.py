"""SPEAKS SAML: pure functions over SAML documents; no database, no framework."""
