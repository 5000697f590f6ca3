"""Password redaction for anything printed, logged or written (kept free of heavy imports)."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+(@)")


def redact(text: str | None) -> str | None:
    """``text`` (a URI or a message quoting one) with every ``scheme://user:password@`` password replaced by ``***``.

    Storage and tracking URIs are printed and logged; their passwords never are.
    """
    if not text:
        return text
    return _PASSWORD.sub(r"\1***\2", text)
