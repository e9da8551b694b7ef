"""What the shipper is told: where to send, with which token, how hard to push (``endpoint:``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any


class Secret:
    """A value that never shows itself: repr and str are ``Secret('***')``; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling/copying must not go through __setattr__
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    url: str
    token: Secret
    auth_scheme: str = ""
    timeout: float = 10.0
    concurrency: int = 16
    rate_limit: float = 0.0
    ts_unit: str = "s"
    ts_source: str = "event"
    nonce: str = "random"
    max_backoff: float = 60.0
    allow_insecure_http: bool = False
    ca_file: str | None = None  # a PEM bundle of the CAs to trust instead of the default ones (private CA)

    def verify(self) -> ssl.SSLContext | bool:
        """What the HTTP client verifies TLS with: always on. ``True`` is httpx's default trust store;
        with ``ca_file``, a context that trusts exactly that bundle (hostnames still checked)."""
        if self.ca_file is None:
            return True
        return ssl.create_default_context(cafile=self.ca_file)

    def headers(self) -> dict[str, str]:
        """Content-Type and Authorization. Never log these: they carry the token."""
        token = self.token.reveal()
        return {
            "Content-Type": "application/json",
            "Authorization": f"{self.auth_scheme} {token}" if self.auth_scheme else token,
        }
