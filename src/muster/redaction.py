"""redact(text): blank out every secret Muster issues, wherever a request line is kept or logged.

The secrets: SCIM tokens (`mst_<tenant>_<secret>`), events API keys (`mev_<tenant>_<secret>`),
webhook signing secrets (`whsec_...`), bearer credentials of any kind, and the one-time tokens
of set-password links and other `token=`/`password=`/`secret=` parameters or JSON fields. The
tenant part of a token is kept (it names whose token it was, and is no secret); the rest is
`[redacted]`. Used by the provisioning log and by every process-log line (process_logs.py).
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
_PATTERNS = (
    # A credential after Bearer or Basic (eight characters or more: "bearer token is not
    # valid", Muster's own 401 text, stays as it is).
    (
        re.compile(r"(?i)(?<![A-Za-z])((?:bearer|basic)(?:\s+|%20|\+))[A-Za-z0-9._~+/=\-]{8,}"),
        r"\1" + REDACTED,
    ),
    # Muster's own tokens and keys elsewhere: keep the kind and the tenant, drop the secret.
    (
        # (?<![A-Za-z]), not \b: in a URL-encoded query the token follows %22 or %20.
        re.compile(r"(?<![A-Za-z])(m(?:st|ev)_(?:[0-9a-fA-F]{32}_)?)[A-Za-z0-9_\-]{8,}"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?<![A-Za-z])whsec_[A-Za-z0-9_\-]+"), "whsec_" + REDACTED),
    # name=value in a query string or form, "name": "value" in JSON, name: value in text.
    (
        re.compile(
            r"(?i)(?<![A-Za-z])((?:token|secret|api[_-]?key)"
            r"(?:\"\s*:\s*\"|\s*[=:]\s*|%22%3A%22|%3D))[^\s\"&,;%]+"
        ),
        r"\1" + REDACTED,
    ),
    # A password after a space, colon, equals sign or quote: "Password hunter2" is one too.
    # (Not so for a token: "token is not valid" is Muster's own 401 text.)
    (
        re.compile(r"(?i)(?<![A-Za-z])(passw(?:or)?d(?:[\s:=\"']|%[0-9A-F]{2})+)[^\s\"&,;%]+"),
        r"\1" + REDACTED,
    ),
)
# Plain substring checks settle most texts (paths and details hold no secret) in well under a
# microsecond; the patterns themselves cost several.
_HINTS = ("mst_", "mev_", "whsec_", "bearer", "basic", "passw", "token", "secret", "key")


def redact(text: str) -> str:
    """`text` with every secret in it replaced by `[redacted]`."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
