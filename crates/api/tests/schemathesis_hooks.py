"""schemathesis hooks for crates/api/tests/schemathesis.rs.

An Idempotency-Key names one request: a client sends a new key with each new request and the same
key only to retry the same request (a different request with a used key is 422, by design). The
generator draws keys from a small alphabet and would reuse them across different requests, so a
well-formed key is replaced by a fresh one; malformed keys (negative cases) are sent as drawn.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and WELL_FORMED.match(value):
            headers[name] = str(uuid.uuid4())
    return None
