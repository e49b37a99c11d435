"""Wire time formats: RFC3339(Nano) as Go prints UTC times, and back to Unix nanoseconds."""

from __future__ import annotations

import pytest

from bacalhau.models.clock import parse_rfc3339_ns, rfc3339, rfc3339_nano


@pytest.mark.parametrize(
    ("unix_ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (1_796_637_870_291_332_700, "2026-12-07T10:04:30.2913327Z"),  # trailing zeros trimmed, as Go does
        (1_796_637_870_100_000_000, "2026-12-07T10:04:30.1Z"),
        (1_796_637_870_000_000_000, "2026-12-07T10:04:30Z"),  # no fraction at all on a whole second
    ],
)
def test_rfc3339_nano_prints_what_go_prints_and_parses_back(unix_ns: int, text: str) -> None:
    assert rfc3339_nano(unix_ns) == text
    assert parse_rfc3339_ns(text) == unix_ns


def test_events_of_one_second_share_its_text_but_keep_their_own_fraction() -> None:
    second = 1_796_637_870_000_000_000
    assert [rfc3339_nano(second + n) for n in (5, 500_000_000)] == [
        "2026-12-07T10:04:30.000000005Z", "2026-12-07T10:04:30.5Z"
    ]
    assert rfc3339(second + 999_999_999) == "2026-12-07T10:04:30Z"
    assert rfc3339_nano(second + 1_000_000_000) == "2026-12-07T10:04:31Z"
