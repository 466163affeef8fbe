"""hint_for(status, scimType, detail): a plain-language next step for a known failure.

Each hint answers the admin who opened a failed Okta task: what happened, and what to do, in
the product's words (Settings → Identity Providers, seats, the name rules).
"""

from __future__ import annotations

import re

# Matched on the details Muster itself writes (services/, scim/); the order matters: the most
# specific first.
_HINTS: tuple[tuple[int | None, re.Pattern[str], str], ...] = (
    (
        400,
        re.compile(r"contains .*, which is not allowed"),
        "The person's name contains a character Muster does not accept (@ , # $ !). Names may "
        "contain letters of any language, digits, spaces and . _ - ( ) '. Correct the name in "
        "Okta, then retry the failed task.",
    ),
    (
        400,
        re.compile(r"cannot be changed through provisioning"),
        "Email addresses cannot be changed through provisioning: Muster identifies each person "
        "by email. Delete the user here (Users → the user → Delete), then have the person sign "
        "in with the new address or re-assign them in Okta.",
    ),
    (
        409,
        re.compile(r"deactivated user already holds"),
        "A deactivated user holds this userName or email with a different identity. Delete "
        "that user here, then retry the task in Okta.",
    ),
    (
        403,
        re.compile(r"licence limit reached"),
        "All seats of this account are in use. Deactivate or delete users who no longer need "
        "access, or ask your account manager for more seats, then retry the task in Okta.",
    ),
    (
        400,
        re.compile(r"nested \(linked\) groups are not supported"),
        "Groups cannot contain groups in Muster. In Okta, assign each group to the application "
        "directly (Push Groups) instead of nesting it inside another.",
    ),
    (
        400,
        re.compile(r"members: no user with id"),
        "The group push names a person Muster does not have: usually someone not assigned to "
        "the application, or whose own creation failed (look for an earlier failed entry). "
        "Assign the person to the application in Okta, then push the group again.",
    ),
    (
        401,
        re.compile(r""),
        "The token Okta sent is not valid: it was replaced by a newer one, or mistyped. Generate "
        "a new token under Settings → Identity Providers → SCIM Integration → Settings and "
        "paste it into Okta (Provisioning → Integration → API Token), then Test API Credentials.",
    ),
    (
        403,
        re.compile(r"turned off"),
        "SCIM provisioning is turned off for this account. Turn it on under Settings → Identity "
        "Providers → SCIM Integration; the existing token works again.",
    ),
    (
        403,
        re.compile(r"Enterprise plan"),
        "SCIM provisioning is an Enterprise feature. Ask your account manager (or support) to "
        "upgrade this account.",
    ),
    (
        409,
        re.compile(r"already in use"),
        "Another user or group already has this name or email address. If it is the same "
        "person, there is nothing to do; otherwise rename one of them in Okta.",
    ),
)


def hint_for(status: int, scim_type: str | None, detail: str | None) -> str | None:
    """Return the next step for a failed request Muster recognises, or None."""
    if status < 400:
        return None
    text = detail or ""
    for hint_status, pattern, hint in _HINTS:
        if hint_status in (None, status) and pattern.search(text):
            return hint
    return None
