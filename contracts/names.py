"""The one pattern for names that become paths and actor names: models, datasets, runs,
monitors. Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most
128 characters: never ``/``, never ``..`` on its own, never a hidden or empty name."""

from __future__ import annotations

import re

from contracts.errors import InvalidInput

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(value: object, what: str) -> str:
    """``value`` when it is a valid name; InvalidInput naming ``what`` otherwise."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise InvalidInput(f"{what}: {shown} is not a valid name (letters, digits, '.', '_' and '-', "
                           f"starting with a letter or digit, at most 128 characters)")
    return value
