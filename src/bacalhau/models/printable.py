"""Text that came from someone else, made fit for a terminal or for a one-line message.

Job names, labels, node names, log lines and registry error bodies are written by whoever submitted
the job or runs the registry. Printed raw, `ESC ] 0 ; text BEL` retitles the reader's terminal, and
other sequences move the cursor, rewrite what is on screen or (on some terminals) answer back into the
input. Two treatments, both pure:

- `escape_controls`: every control character becomes visible (`\\x1b`, `\\x07`, `\\x9b`, `\\u202e`), so
  what was sent stays readable and nothing acts on the terminal. For tables, descriptions and logs.
- `one_line`: escape sequences dropped whole, other controls turned into spaces, whitespace collapsed,
  length capped. For error messages quoting a third party (a registry's answer in a pull error).

Controls are C0 (but the ones the caller keeps, usually newline and tab), DEL, C1 (U+0080-U+009F:
U+009B is a one-byte CSI on terminals that honour 8-bit controls) and the Unicode bidirectional
overrides, which reorder what a reader sees without changing the bytes.
"""

from __future__ import annotations

import functools
import re

# Bidi embeddings/overrides/isolates and marks: "Trojan Source" reordering.
_BIDI = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
# ESC sequences, for `one_line`: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC strings (ended by BEL or
# ESC \, or by the end of the text), and two-character ones (ESC c, ESC 7 ...).
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b.?",
    re.DOTALL,
)
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f" + _BIDI + "]")
_WHITESPACE = re.compile(r"\s+")
ELLIPSIS = "…"


@functools.cache
def _controls(keep: str) -> re.Pattern[str]:
    kept = set(keep)
    c0 = "".join(re.escape(chr(code)) for code in range(0x20) if chr(code) not in kept and code != 0x0D)
    # A carriage return right before a kept newline is a Windows line end, not an overwrite of the line.
    cr = r"\r(?!\n)|" if "\n" in kept and "\r" not in kept else ("" if "\r" in kept else r"\r|")
    return re.compile(cr + "[" + c0 + r"\x7f-\x9f" + _BIDI + "]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep: str = "\n\t") -> str:
    """`text` with every control character but those in `keep` written out visibly (`\\x1b`).

    Idempotent on text without controls; printable characters (any script, emoji) are left alone.
    """
    if text.isprintable():  # False for every control, format (bidi) and line-separator character
        return text  # the common case, at C speed
    return _controls(keep).sub(_visible, text)


def has_controls(text: str) -> bool:
    """Whether `text` holds any control character (newline and tab included)."""
    return _ANY_CONTROL.search(text) is not None


def one_line(text: str, *, max_chars: int = 400) -> str:
    """`text` as one clean line of at most `max_chars` characters (an ellipsis marks a cut).

    Escape sequences are removed with their parameters (an OSC title is not left behind as text),
    remaining controls become spaces, runs of whitespace one space.
    """
    flat = _ESCAPE_SEQUENCE.sub(" ", text)
    flat = _ANY_CONTROL.sub(" ", flat)
    flat = _WHITESPACE.sub(" ", flat).strip()
    if len(flat) > max_chars:
        return flat[: max(0, max_chars - 1)].rstrip() + ELLIPSIS
    return flat
