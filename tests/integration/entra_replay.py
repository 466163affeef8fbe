"""What Entra's provisioning service sends besides the bodies: headers, and the log to read."""

from __future__ import annotations

from muster.db.unit_of_work import UnitOfWork
from muster.services import provisioning_log

# Microsoft documents no User-Agent for its provisioning service (idp-requests.md lists none);
# this one only labels the log. Muster never keys on it: every quirk is found by the request's
# shape, so Entra tenants with and without the aadOptscim062020 flag are both served.
ENTRA_HEADERS = {
    "User-Agent": "Azure Active Directory SCIM Client",
    "Accept": "application/scim+json",
    "Content-Type": "application/scim+json",
}


def logged_quirks(uow: UnitOfWork) -> set[str]:
    """The quirks the provisioning log names for the newest request of the tenant."""
    newest = provisioning_log.list_entries(uow, limit=1)[0]
    return set(newest.client_quirks.split(",")) if newest.client_quirks else set()
