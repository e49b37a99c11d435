"""DomainAllowList: a job's `Network.Domains` read with squid `dstdomain` semantics.

Covered: an exact name matches only itself (never its subdomains), a ".suffix" entry matches the
domain itself and every name below it but not a name that merely ends with the same letters, case and a
trailing dot do not matter, IP literals (IPv4, IPv6, "[::1]" bracket form, non-canonical IPv6
spellings) match only address entries and a name never matches an address entry, blank lists are
falsy, and describe() is stable whatever the order the job listed its domains in.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bacalhau.egress.domains import MISSING_DOMAINS, DomainAllowList

# A DNS label that can never be an IP literal on its own or with the alphabetic suffixes used below.
LABELS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z", fullmatch=True)
TLDS = st.from_regex(r"\A[a-z]{2,8}\Z", fullmatch=True)


def allow(*domains: str) -> DomainAllowList:
    """The allow-list of a job whose Network.Domains are `domains`."""
    return DomainAllowList.of(domains)


def test_exact_name_matches_only_itself() -> None:
    domains = allow("example.com")
    assert domains.allows("example.com")
    assert not domains.allows("www.example.com")
    assert not domains.allows("a.b.example.com")
    assert not domains.allows("example.org")
    assert not domains.allows("notexample.com")
    assert not domains.allows("com")


def test_dot_suffix_matches_the_domain_and_every_name_below() -> None:
    domains = allow(".example.com")
    for host in ("example.com", "www.example.com", "a.b.c.example.com"):
        assert domains.allows(host), host
    for host in ("badexample.com", "example.com.evil.net", "example.org", "com", "xample.com"):
        assert not domains.allows(host), host


@pytest.mark.parametrize("host", ["EXAMPLE.COM", "Example.Com", "example.com.", "EXAMPLE.COM."])
def test_case_and_trailing_dot_of_the_request_are_ignored(host: str) -> None:
    assert allow("example.com").allows(host)
    assert allow(".example.com").allows(host)
    assert allow(".example.com").allows("WWW." + host)


@pytest.mark.parametrize("entry", ["EXAMPLE.com", "example.com.", "  example.com  ", "Example.COM."])
def test_case_blanks_and_trailing_dot_of_the_entry_are_ignored(entry: str) -> None:
    domains = allow(entry)
    assert domains.allows("example.com")
    assert not domains.allows("www.example.com")


def test_ipv4_literal_matches_only_an_address_entry() -> None:
    domains = allow("192.0.2.7")
    assert domains.allows("192.0.2.7")
    assert not domains.allows("192.0.2.8")
    # A name entry never lets an address through, even one that "looks" like the name.
    assert not allow("example.com").allows("93.184.216.34")
    assert not allow(".0.2.7").allows("192.0.2.7")


@pytest.mark.parametrize(
    "entry, host",
    [
        ("::1", "[::1]"),
        ("[::1]", "::1"),
        ("[::1]", "[::1]"),
        ("2001:db8::1", "2001:DB8:0:0:0:0:0:1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "[2001:db8:0::1]"),
    ],
)
def test_ipv6_literal_matches_whatever_its_spelling(entry: str, host: str) -> None:
    assert allow(entry).allows(host)


def test_ipv6_literal_does_not_match_another_address() -> None:
    domains = allow("2001:db8::1")
    assert not domains.allows("2001:db8::2")
    assert not domains.allows("[::1]")
    assert not domains.allows("192.0.2.1")


def test_a_name_never_matches_an_address_entry() -> None:
    domains = allow("192.0.2.7", "::1")
    assert domains
    assert not domains.allows("localhost")
    assert not domains.allows("example.com")
    assert not domains.allows("7.2.0.192.in-addr.arpa")


def test_mixed_list_keeps_each_kind_to_itself() -> None:
    domains = allow("api.example.com", ".pypi.org", "192.0.2.7", "[2001:db8::5]")
    assert domains.allows("api.example.com")
    assert not domains.allows("www.example.com")
    assert domains.allows("pypi.org") and domains.allows("files.pypi.org")
    assert domains.allows("192.0.2.7") and domains.allows("[2001:db8::5]")
    assert not domains.allows("192.0.2.8")


@pytest.mark.parametrize("domains", [[], [""], ["   "], ["."], ["", " . ", "\t"]])
def test_empty_or_blank_lists_are_falsy_and_allow_nothing(domains: list[str]) -> None:
    allowed = DomainAllowList.of(domains)
    assert not allowed
    assert allowed.describe() == ""
    assert not allowed.allows("example.com")
    assert not allowed.allows("127.0.0.1")


@pytest.mark.parametrize("domains", [["example.com"], [".example.com"], ["192.0.2.7"], ["", "::1"]])
def test_any_real_entry_makes_the_list_truthy(domains: list[str]) -> None:
    assert DomainAllowList.of(domains)


def test_missing_domains_message_matches_bacalhau() -> None:
    assert "at least one domain is required when HTTP networking is enabled" in MISSING_DOMAINS


def test_describe_is_stable_and_normalised() -> None:
    a = allow("b.example.com", ".Example.ORG", "192.0.2.7", "2001:0DB8::1", "a.example.com.")
    b = allow("2001:db8::1", "a.example.com", "192.0.2.7", ".example.org", "B.EXAMPLE.COM")
    assert a == b
    assert a.describe() == b.describe()
    assert a.describe() == ".example.org, 192.0.2.7, 2001:db8::1, a.example.com, b.example.com"


def test_duplicates_are_listed_once() -> None:
    assert allow("example.com", "EXAMPLE.com.", "example.com").describe() == "example.com"


@given(label=st.lists(LABELS, min_size=1, max_size=4), domain=LABELS, tld=TLDS)
def test_any_labels_prepended_to_a_suffix_entry_match(label: list[str], domain: str, tld: str) -> None:
    suffix = f".{domain}.{tld}"
    host = ".".join(label) + suffix
    allowed = allow(suffix)
    assert allowed.allows(host)
    assert allowed.allows(host.upper() + ".")
    # ... while the exact entry lets through none of them.
    assert not allow(suffix[1:]).allows(host)


@given(prefix=LABELS, domain=LABELS, tld=TLDS)
def test_a_name_that_only_ends_with_the_same_letters_never_matches(prefix: str, domain: str, tld: str) -> None:
    # "badexample.com" against ".example.com": no dot between the extra letters and the domain.
    assert not allow(f".{domain}.{tld}").allows(f"{prefix}{domain}.{tld}")
    assert not allow(f"{domain}.{tld}").allows(f"{prefix}{domain}.{tld}")


@given(st.lists(st.sampled_from(["a.example.com", ".example.org", "192.0.2.7", "::1", "x.net", ""]), max_size=8))
def test_describe_does_not_depend_on_order(domains: list[str]) -> None:
    assert DomainAllowList.of(domains).describe() == DomainAllowList.of(reversed(domains)).describe()
    assert DomainAllowList.of(domains).describe() == DomainAllowList.of(sorted(domains)).describe()


@given(st.ip_addresses())
def test_every_address_matches_itself_in_any_spelling(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    text = str(address)
    allowed = allow(text)
    assert allowed.allows(text)
    if ":" in text:
        assert allowed.allows(f"[{text.upper()}]")
        assert allowed.allows(address.exploded)
    assert not allow("example.com").allows(text)
