"""The SCIM 2.0 API under /scim/v2, spoken as application/scim+json."""
