"""API.Auth.Users: start-up validation with Bacalhau's messages (pkg/authz/entry_point_authorizer.go
validateUser / checkForDuplicates), the lookups, and passwords (bcrypt or plain, pkg/credsecurity)."""

from __future__ import annotations

from typing import Any

import bcrypt
import pytest

from bacalhau.auth.users import UserTable, check_password, hash_password, user_id
from bacalhau.config.api_auth import AuthUser
from bacalhau.models.errors import ConfigurationError

GOOD_PASSWORD = "correct-horse-1"
GOOD_KEY = "k" * 19 + "ABCDE"  # 24 characters, ends in ABCDE
ALL = [{"Actions": ["*"]}]


def user(**fields: Any) -> AuthUser:
    fields.setdefault("Capabilities", ALL)
    return AuthUser.from_user(fields)


def refused(*users: AuthUser) -> str:
    with pytest.raises(ConfigurationError) as info:
        UserTable(list(users))
    message = info.value.message
    assert message.startswith("error initializing users: "), message
    return message.removeprefix("error initializing users: ")


# -- validation: what matches Bacalhau --------------------------------------------------------------
def test_both_methods_is_refused_naming_the_alias() -> None:
    problem = refused(user(Alias="ops", Username="alice", Password=GOOD_PASSWORD, APIKey=GOOD_KEY))
    assert problem == "user 'ops' has both username/password and API key, must have only one authentication method"


def test_neither_method_is_refused_naming_the_alias() -> None:
    problem = refused(user(Alias="ghost"))
    assert problem == "user 'ghost' has neither username/password nor API key, must have one authentication method"


def test_a_user_with_nothing_at_all_is_refused() -> None:
    problem = refused(user())
    assert "has neither username/password nor API key" in problem


def test_no_capabilities_is_refused() -> None:
    problem = refused(user(Username="alice", Password=GOOD_PASSWORD, Capabilities=[]))
    assert problem == "user 'alice' has no capabilities defined, must have at least one capability"


def test_the_api_key_user_is_named_by_the_end_of_its_key() -> None:
    problem = refused(user(APIKey=GOOD_KEY, Capabilities=[]))
    assert problem == "user 'API key ending in ...ABCDE' has no capabilities defined, must have at least one capability"


def test_user_id_prefers_alias_then_username_then_key_end() -> None:
    assert user_id(user(Alias="a1", Username="bob", Password=GOOD_PASSWORD)) == "a1"
    assert user_id(user(Username="bob", Password=GOOD_PASSWORD)) == "bob"
    assert user_id(user(APIKey=GOOD_KEY)) == "API key ending in ...ABCDE"


def test_duplicate_alias_is_refused_case_insensitively() -> None:
    problem = refused(
        user(Alias="Ops", Username="alice", Password=GOOD_PASSWORD),
        user(Alias="oPS", APIKey=GOOD_KEY),
    )
    assert problem == "duplicate alias detected: 'Ops' and 'oPS' (aliases are case-insensitive)"


def test_duplicate_username_is_refused_case_insensitively() -> None:
    problem = refused(
        user(Username="Alice", Password=GOOD_PASSWORD),
        user(Username="aLICE", Password="another-password"),
    )
    assert problem == "duplicate username detected: 'Alice' and 'aLICE' (usernames are case-insensitive)"


def test_duplicate_api_key_is_refused_naming_the_second_user() -> None:
    problem = refused(user(Alias="first", APIKey=GOOD_KEY), user(Alias="second", APIKey=GOOD_KEY))
    assert problem == "duplicate API key detected for user 'second'"


def test_api_keys_differing_in_case_are_different_keys() -> None:
    table = UserTable([user(Alias="lower", APIKey=GOOD_KEY.lower()), user(Alias="upper", APIKey=GOOD_KEY.upper())])
    found_lower, found_upper = table.by_key(GOOD_KEY.lower()), table.by_key(GOOD_KEY.upper())
    assert found_lower is not None and found_lower.name == "lower"
    assert found_upper is not None and found_upper.name == "upper"


@pytest.mark.parametrize("username", ["al ice", "alice!", "alice_1", "alice-1", "ålice", "alice@example"])
def test_a_username_with_other_than_ascii_letters_and_digits_is_refused(username: str) -> None:
    problem = refused(user(Alias="u", Username=username, Password=GOOD_PASSWORD))
    assert "must contain only alphanumeric characters (a-z, A-Z, 0-9)" in problem, problem
    assert problem.startswith("user 'u' ") or "'u'" in problem, problem


def test_a_username_over_100_characters_is_refused_and_100_is_fine() -> None:
    UserTable([user(Username="a" * 100, Password=GOOD_PASSWORD)])
    problem = refused(user(Alias="long", Username="a" * 101, Password=GOOD_PASSWORD))
    assert "'long'" in problem and "100" in problem, problem


def test_a_password_under_10_characters_is_refused_and_10_is_fine() -> None:
    UserTable([user(Username="alice", Password="x" * 10)])
    problem = refused(user(Username="alice", Password="x" * 9))
    assert "'alice'" in problem and "is too short, minimum length is 10 characters" in problem, problem


def test_a_password_over_255_characters_is_refused_and_255_is_fine() -> None:
    UserTable([user(Username="alice", Password="x" * 255)])
    problem = refused(user(Username="alice", Password="x" * 256))
    assert "'alice'" in problem and "255" in problem, problem


def test_an_api_key_under_20_characters_is_refused_and_20_is_fine() -> None:
    UserTable([user(APIKey="k" * 20)])
    problem = refused(user(Alias="short", APIKey="k" * 19))
    assert "'short'" in problem and "is too short, minimum length is 20 characters" in problem, problem


def test_an_api_key_over_255_characters_is_refused_and_255_is_fine() -> None:
    UserTable([user(APIKey="k" * 255)])
    problem = refused(user(Alias="long", APIKey="k" * 256))
    assert "'long'" in problem and "255" in problem, problem


def test_the_first_broken_user_stops_the_table_even_after_good_ones() -> None:
    problem = refused(user(Username="alice", Password=GOOD_PASSWORD), user(Alias="bad", Username="b", Password="short"))
    assert "'bad'" in problem


def test_validation_errors_carry_a_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        UserTable([user(Alias="ghost")])
    assert "API.Auth.Users" in info.value.hint


# -- validation: Bacalhau's exact wording (pkg/authz/entry_point_authorizer.go validateUser) ------------


def test_bacalhau_wording_username_not_alphanumeric() -> None:
    problem = refused(user(Username="al-ice", Password=GOOD_PASSWORD))
    assert problem == "username for user 'al-ice' must contain only alphanumeric characters (a-z, A-Z, 0-9)"


def test_bacalhau_wording_username_too_long() -> None:
    problem = refused(user(Alias="long", Username="a" * 101, Password=GOOD_PASSWORD))
    assert problem == "username for user 'long' exceeds maximum length of 100 characters"


def test_bacalhau_wording_password_too_short() -> None:
    problem = refused(user(Username="alice", Password="x" * 9))
    assert problem == "password for user 'alice' is too short, minimum length is 10 characters"


def test_bacalhau_wording_password_too_long() -> None:
    problem = refused(user(Username="alice", Password="x" * 256))
    assert problem == "password for user 'alice' exceeds maximum length of 255 characters"


def test_bacalhau_wording_api_key_too_short() -> None:
    problem = refused(user(Alias="short", APIKey="k" * 19))
    assert problem == "API key for user 'short' is too short, minimum length is 20 characters"


def test_bacalhau_wording_api_key_too_long() -> None:
    problem = refused(user(Alias="long", APIKey="k" * 256))
    assert problem == "API key for user 'long' exceeds maximum length of 255 characters"


def test_a_username_without_a_password_is_neither_method() -> None:
    problem = refused(user(Username="alice"))
    assert problem == "user 'alice' has neither username/password nor API key, must have one authentication method"


def test_a_username_with_an_api_key_and_no_password_is_an_api_key_user() -> None:
    table = UserTable([user(Username="robot", APIKey=GOOD_KEY, Capabilities=[{"Actions": ["read:job"]}])])
    found = table.by_key(GOOD_KEY)
    assert found is not None and found.name == "robot"


# -- lookups --------------------------------------------------------------------------------------------
def test_basic_lookup_is_case_insensitive_on_the_username_only() -> None:
    table = UserTable([user(Alias="admin", Username="Alice", Password=GOOD_PASSWORD)])
    for name in ("Alice", "alice", "ALICE"):
        found = table.by_basic(name, GOOD_PASSWORD)
        assert found is not None and found.name == "admin" and found.actions == ("*",)
    assert table.by_basic("alice", GOOD_PASSWORD.upper()) is None
    assert table.by_basic("bob", GOOD_PASSWORD) is None
    assert table.by_basic("alice", "") is None


def test_key_lookup_is_exact() -> None:
    table = UserTable([user(APIKey=GOOD_KEY, Capabilities=[{"Actions": ["read:job"]}, {"Actions": ["write:node"]}])])
    found = table.by_key(GOOD_KEY)
    assert found is not None
    assert found.actions == ("read:job", "write:node")  # every Capabilities entry's actions
    assert table.by_key(GOOD_KEY[:-1]) is None
    assert table.by_key(GOOD_KEY + "x") is None
    assert table.by_key("") is None


def test_an_api_key_is_not_a_password_and_a_password_is_not_an_api_key() -> None:
    table = UserTable([user(Username="alice", Password="a-password-that-is-long-enough"), user(APIKey=GOOD_KEY)])
    assert table.by_key("a-password-that-is-long-enough") is None
    assert table.by_basic("alice", GOOD_KEY) is None


# -- passwords ------------------------------------------------------------------------------------------
def test_hash_password_makes_a_go_style_cost_10_hash_that_verifies() -> None:
    hashed = hash_password(GOOD_PASSWORD)
    assert hashed.startswith("$2a$10$") and len(hashed) == 60, hashed
    assert check_password(hashed, GOOD_PASSWORD)
    assert not check_password(hashed, GOOD_PASSWORD + "x")
    assert not check_password(hashed, "")
    # Salted: two hashes of one password differ, and both verify.
    again = hash_password(GOOD_PASSWORD)
    assert again != hashed and check_password(again, GOOD_PASSWORD)
    # The hash is a real bcrypt hash any implementation reads.
    assert bcrypt.checkpw(GOOD_PASSWORD.encode(), hashed.encode())


def test_a_go_2a_hash_and_a_python_2b_hash_both_verify() -> None:
    # "secret-password" as Go's x/crypto/bcrypt stores it: the $2a$ prefix, cost 10 (a $2a$ salt fed to
    # bcrypt gives the bytes Go's GenerateFromPassword writes for that salt).
    go_hash = "$2a$10$kFOR28uWN82MdrVK9fq1F.ozB91Oa61rqnYClry/CZsQ2t92kxzyu"
    assert go_hash.startswith("$2a$10$") and len(go_hash) == 60
    assert bcrypt.checkpw(b"secret-password", go_hash.encode()), "the fixture hash itself is wrong"
    assert check_password(go_hash, "secret-password")
    assert not check_password(go_hash, "secret-passwore")
    py_hash = bcrypt.hashpw(b"secret-password", bcrypt.gensalt(4)).decode()
    assert py_hash.startswith("$2b$04$")
    assert check_password(py_hash, "secret-password")
    assert not check_password(py_hash, "Secret-password")
    y_hash = "$2y$" + py_hash.removeprefix("$2b$")
    assert check_password(y_hash, "secret-password")


def test_a_plain_stored_password_compares_exactly() -> None:
    assert check_password("plain-password-1", "plain-password-1")
    assert not check_password("plain-password-1", "plain-password-2")
    assert not check_password("plain-password-1", "plain-password-1 ")
    assert not check_password("plain-password-1", "PLAIN-PASSWORD-1")
    assert not check_password("plain-password-1", "")


def test_a_bcrypt_looking_string_under_60_characters_is_a_plain_password() -> None:
    # Bacalhau treats it as plain text: it matches itself and nothing else.
    stored = "$2a$10$tooshort"
    assert check_password(stored, stored)
    assert not check_password(stored, "tooshort")


@pytest.mark.parametrize(
    "stored",
    [
        "$2a$10$" + "!" * 53,  # bcrypt prefix, 60 characters, not bcrypt's alphabet
        "$2a$99$" + "a" * 53,  # impossible cost
        "$2b$10$" + "." * 53,
    ],
)
def test_a_malformed_hash_matches_nothing(stored: str) -> None:
    assert len(stored) == 60
    assert not check_password(stored, stored)
    assert not check_password(stored, "")
    assert not check_password(stored, "anything-at-all")


def test_a_user_with_a_hashed_password_logs_in_with_the_password_not_the_hash() -> None:
    hashed = hash_password(GOOD_PASSWORD)
    table = UserTable([user(Username="alice", Password=hashed)])
    assert table.by_basic("alice", GOOD_PASSWORD) is not None
    assert table.by_basic("alice", hashed) is None
