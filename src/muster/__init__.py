"""Muster: multi-tenant SCIM 2.0 provisioning and SAML sign-in."""

__version__ = "0.1.0"
