"""What one SAML sign-in costs: Muster's own checks vs pysaml2 + xmlsec1's signature check.

Run: .venv/bin/python benchmarks/saml_validation.py [N]   (default 20 responses)
Signs N Okta-shaped responses with the tests' fake Okta (tests/saml_idp.py), then times
validate_response on each, and its parts, and prints medians. No database, no HTTP.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import saml_idp as idp

from muster.saml import assertions
from muster.saml.service_provider import service_provider_for


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    sp = service_provider_for(
        "https://muster.example",
        "bench",
        idp_metadata_xml=idp.okta_metadata(),
        idp_entity_id=idp.IDP_ENTITY_ID,
    )
    documents = [
        idp.sign(idp.response_xml(idp.ResponseSpec(acs_url=sp.acs_url, audience=sp.entity_id)))
        for _ in range(count)
    ]
    own, library, whole = [], [], []
    for document in documents:
        now = datetime.now(UTC).replace(tzinfo=None)
        encoded = idp.encode(document)
        start = time.perf_counter()
        root = assertions._parse(assertions._decode(encoded))
        assertion = assertions._the_assertion(root)
        assertions._check_content(root, assertion, sp, now)
        middle = time.perf_counter()
        assertions._verify_with_pysaml2(sp, document)
        end = time.perf_counter()
        own.append(middle - start)
        library.append(end - middle)
    for document in documents[: max(1, count // 2)]:
        # A fresh document each time is not needed: validate_response keeps no state.
        start = time.perf_counter()
        assertions.validate_response(
            idp.encode(document), sp, now=datetime.now(UTC).replace(tzinfo=None)
        )
        whole.append(time.perf_counter() - start)
    rows = (
        ("muster's checks (size, DTD, shape, profile, content)", own),
        ("pysaml2 + xmlsec1 (2 signatures, subprocesses)", library),
        ("validate_response, whole", whole),
    )
    print(f"responses: {count} (response and assertion signed, RSA-SHA256, {len(documents[0])} B)")
    for label, times in rows:
        print(f"{label:<55} median {statistics.median(times) * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
