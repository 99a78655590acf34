"""A network failure (no HTTP answer) in the few words an operator acts on: what happened, and
to which host and port. The clients' own messages nest three exceptions deep and print object
addresses; "MaxRetryError" alone said nothing."""

from __future__ import annotations

# (words in the exception chain, what they mean), first match wins
_KINDS = (
    (("Timeout", "timed out"), "timed out (no answer within timeout_seconds)"),
    (("refused",), "connection refused"),
    (("NameResolution", "Name or service not known", "getaddrinfo", "nodename"), "host not found"),
    (("SSL", "certificate"), "TLS failed"),
    (("reset", "RemoteDisconnected", "ProtocolError", "aborted", "closed"), "connection dropped"),
)


def network_failure(error: BaseException) -> str:
    """`timed out (no answer within timeout_seconds) (127.0.0.1:44302)` for a client's error."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            first = current.args[0] if current.args else None
            inner = first if isinstance(first, BaseException) else current.__cause__
        current = inner
    said = " ".join(f"{type(e).__name__} {e}" for e in chain)
    what = next(
        (meaning for words, meaning in _KINDS if any(w in said for w in words)),
        type(chain[-1]).__name__,
    )
    pools = (getattr(e, "pool", None) for e in chain)
    pool = next((p for p in pools if getattr(p, "host", None)), None)
    return f"{what} ({pool.host}:{pool.port})" if pool is not None else what
