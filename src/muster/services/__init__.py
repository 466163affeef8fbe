"""Use cases: one module per noun, one function per use case; each owns its transaction."""
