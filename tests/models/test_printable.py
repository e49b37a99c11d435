"""Untrusted text made safe: visible escapes for terminals, one clean capped line for messages."""

from __future__ import annotations

import pytest

from bacalhau.models.printable import ELLIPSIS, escape_controls, has_controls, one_line

OSC_TITLE = "\x1b]0;pwned\x07"


def test_escape_controls_writes_an_osc_title_out_visibly() -> None:
    assert escape_controls(f"job{OSC_TITLE}") == "job\\x1b]0;pwned\\x07"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x9b2Jb", "a\\x9b2Jb"),  # C1 CSI
        ("a\x7fb", "a\\x7fb"),  # DEL
        ("a\x00b", "a\\x00b"),
        ("abc\u202edcba", "abc\\u202edcba"),  # bidi override
        ("over\rwrite", "over\\x0dwrite"),
        ("line\r\nnext", "line\r\nnext"),  # a Windows line end stays
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("héllo 日本 🙂", "héllo 日本 🙂"),
    ],
)
def test_escape_controls_keeps_printable_text_and_newlines(text: str, shown: str) -> None:
    assert escape_controls(text) == shown
    assert not has_controls(escape_controls(text, keep=""))


def test_escape_controls_with_nothing_kept_escapes_newline_and_tab() -> None:
    assert escape_controls("a\tb\nc", keep="") == "a\\x09b\\x0ac"


def test_one_line_drops_escape_sequences_whole_and_collapses_whitespace() -> None:
    text = f"error: {OSC_TITLE}\x1b[31mred\x1b[0m\n\tnext line\x1bc end"
    assert one_line(text) == "error: red next line end"


def test_one_line_caps_the_length_with_an_ellipsis() -> None:
    capped = one_line("x" * 10_000, max_chars=50)
    assert len(capped) == 50 and capped.endswith(ELLIPSIS)
    assert one_line("short", max_chars=50) == "short"


def test_one_line_removes_an_unterminated_osc_and_c1_sequences() -> None:
    assert one_line("a\x1b]0;never ends") == "a"
    assert one_line("a\x9b2Jb\x9d0;t\x07c") == "a b c"
