"""The platform events API: /api/v1/events."""
