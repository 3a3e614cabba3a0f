"""Terminal escape sequences in piped text (``grep --color=always``, ``rg --color=always``).

Readers strip them before parsing and scoring, and keep them in ``Document.raw`` so that plain
output shows the colours the input had.
"""

from __future__ import annotations

import re

# CSI (colours, erase-line ``ESC[K``), OSC terminated by BEL or ST (hyperlinks), and the
# two-byte escapes. A lone ESC that starts none of these stays: it is text.
_ESCAPE = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1b[@-Z\\-_]"
)


def strip(data: bytes) -> bytes:
    """``data`` without terminal escape sequences."""
    if b"\x1b" not in data:  # the common case costs one scan
        return data
    return _ESCAPE.sub(b"", data)
