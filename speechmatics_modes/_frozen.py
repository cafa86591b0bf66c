"""The base of every value model: frozen, and strict about field names.

Values (options, policies, words, events) compare and hash by content and cannot change after
validation, and ``extra="forbid"`` makes a misspelt field an error instead of a silently
ignored option. One base says so once. Validators are built on first use (``defer_build``):
a batch job never validates a stream event, so importing the package need not build them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """A pydantic model that is an immutable value and refuses unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
