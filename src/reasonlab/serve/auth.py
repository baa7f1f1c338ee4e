"""Optional API-key authentication: ``Authorization: Bearer <key>`` on every route.

Off unless a key is configured (``reasonlab serve --api-key KEY`` or ``REASONLAB_API_KEY``): on
127.0.0.1 only local processes can connect anyway. A missing or wrong key is a 401 in OpenAI's
error shape (code ``invalid_api_key``), so the ``openai`` client raises ``AuthenticationError``.
The comparison takes the same time whatever the key (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac

from reasonlab.serve.errors import APIError


class APIKeyAuth:
    """ASGI middleware refusing every HTTP request without the right bearer key."""

    def __init__(self, app, api_key: str):
        if not api_key:
            raise ValueError("api_key must be non-empty")
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            return await self.app(scope, receive, send)
        message = ("Incorrect API key provided." if token.strip() else
                   "You didn't provide an API key: send it as 'Authorization: Bearer KEY'.")
        error = APIError(401, message, code="invalid_api_key", type_="invalid_request_error",
                         headers={"WWW-Authenticate": "Bearer"})
        return await error.response()(scope, receive, send)
