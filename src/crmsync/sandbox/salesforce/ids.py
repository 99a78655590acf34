"""Salesforce record ids: 15 case-sensitive characters plus the 3-character case-safe suffix."""

from __future__ import annotations

from collections.abc import Iterator

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def case_safe_suffix(id15: str) -> str:
    """The three characters Salesforce appends to a 15-character id to make it case-insensitive."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out.append(_SUFFIX[bits])
    return "".join(out)


def make_id(prefix: str, number: int, pod: str = "8d") -> str:
    """The 18-character id of the `number`th record with key prefix `prefix` (e.g. `006`)."""
    digits = []
    n = number
    for _ in range(10):
        n, r = divmod(n, 62)
        digits.append(_ALPHABET[r])
    body = prefix + pod + "".join(reversed(digits))
    return body + case_safe_suffix(body)


def to_18(record_id: str) -> str:
    """Accept a 15- or 18-character id and return the 18-character form."""
    if len(record_id) == 15:
        return record_id + case_safe_suffix(record_id)
    return record_id


def id_sequence(prefix: str, start: int = 1) -> Iterator[str]:
    """`make_id(prefix, n)` for n = start, start+1, ...; the same ids, without per-id arithmetic.

    For n < 62**5 the first 10 characters and the first two suffix characters are fixed; the last
    five characters are three "block" digits and two "low" digits, each with their upper-case bits
    for the third suffix character.
    """
    limit = 62**5
    if start < limit:
        probe = make_id(prefix, 0)
        head, s12 = probe[:10], probe[15:17]
        lows = [
            (
                _ALPHABET[k // 62] + _ALPHABET[k % 62],
                (_ALPHABET[k // 62].isupper() << 3) | (_ALPHABET[k % 62].isupper() << 4),
            )
            for k in range(62 * 62)
        ]
        tails = [[lo + s12 + _SUFFIX[hb | lb] for lo, lb in lows] for hb in range(8)]
        block, low = divmod(start, 62 * 62)
        while block < 62**3:
            hi = _ALPHABET[block // 3844] + _ALPHABET[block // 62 % 62] + _ALPHABET[block % 62]
            hb = sum(1 << i for i, ch in enumerate(hi) if ch.isupper())
            pre = head + hi
            for tail in tails[hb][low:]:
                yield pre + tail
            block += 1
            low = 0
        start = limit
    n = start
    while True:
        yield make_id(prefix, n)
        n += 1


class IdFactory:
    """Hands out fresh ids per key prefix, continuing after the highest one already used."""

    def __init__(self, pod: str = "8d") -> None:
        self._next: dict[str, int] = {}
        self.pod = pod  # the org's instance in every id, so orgs' ids differ as in Salesforce

    def next(self, prefix: str) -> str:
        n = self._next.get(prefix, 1)
        self._next[prefix] = n + 1
        return make_id(prefix, n, self.pod)

    def reserve(self, prefix: str, count: int) -> None:
        """Note that ids 1..count of `prefix` are taken (after a bulk load)."""
        self._next[prefix] = max(self._next.get(prefix, 1), count + 1)
