"""One base for every refusal a person can cause: str(error) is one sentence for that person.

Each room raises its own kind (ConfigError, DatasetUnavailable, StoreError, ImageRefused, ...),
all derived from PlaygroundError, so a caller that only needs to show the sentence catches one
type: the CLI prints it and exits 1, a page shows it with st.error. What is not a
PlaygroundError is a fault of ours, and is never dressed up as the user's.
"""

from __future__ import annotations


class PlaygroundError(Exception):
    """A refusal or failure the person can act on; str(exc) is one sentence for them."""


def short_reason(exc: BaseException, limit: int = 80) -> str:
    """An exception's own words, one line, at most `limit` characters, without a final stop."""
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "…"
