"""SCIM protocol rules: pure functions over JSON documents; no database, no HTTP, no clock."""
