"""SWAN parameter parsing, against the exact strings PHP's http_build_query writes."""

from __future__ import annotations

import pytest

from pbx.api.params import (
    get_bool,
    get_groups,
    get_int,
    get_str,
    get_str_list,
    parse_query_string,
)
from pbx.errors import InvalidValue
from pbx.values import clean_extension, clean_mac, normalize_phone_number

# http_build_query(['departments' => ['a', 'b']])
PHP_LIST = "departments%5B0%5D=a&departments%5B1%5D=b"
# http_build_query(['queues' => ['ventas' => ['q1', 'q2'], 'soporte' => ['q3']]])
PHP_NESTED = (
    "queues%5Bventas%5D%5B0%5D=q1&queues%5Bventas%5D%5B1%5D=q2&queues%5Bsoporte%5D%5B0%5D=q3"
)
# http_build_query(['name' => 'clientes', 'phones' => [['name' => 'Farmacia Sol',
#                   'number' => '+34 931 234 567'], ['name' => 'Bar Ñu', 'number' => '600']]])
PHP_PHONES = (
    "name=clientes&phones%5B0%5D%5Bname%5D=Farmacia+Sol&phones%5B0%5D%5Bnumber%5D=%2B34+931+234+567"
    "&phones%5B1%5D%5Bname%5D=Bar+%C3%91u&phones%5B1%5D%5Bnumber%5D=600"
)
# http_build_query(['withMobile' => true, 'in_use' => false])
PHP_BOOLS = "withMobile=1&in_use=0"


@pytest.mark.parametrize(
    "query",
    [
        PHP_LIST,
        "departments[]=a&departments[]=b",
        "departments%5B%5D=a&departments%5B%5D=b",
        "departments[0]=a&departments[1]=b",
        "departments[1]=b&departments[0]=a",
        "departments=a&departments=b",
        'departments=["a","b"]',
        "departments=%5B%22a%22%2C%22b%22%5D",
    ],
)
def test_every_list_spelling_parses_to_the_same_list(query):
    assert get_str_list(parse_query_string(query), "departments") == ["a", "b"]


@pytest.mark.parametrize(
    "query",
    [
        PHP_NESTED,
        "queues[ventas][]=q1&queues[ventas][]=q2&queues[soporte][0]=q3",
        'queues={"ventas":["q1","q2"],"soporte":["q3"]}',
    ],
)
def test_every_map_spelling_parses_to_the_same_groups(query):
    assert get_groups(parse_query_string(query), "queues") == {
        "ventas": ["q1", "q2"],
        "soporte": ["q3"],
    }


@pytest.mark.parametrize(
    ("query", "groups"),
    [
        ("queues[5][]=q1&queues[7][]=q2&queues[7][]=q3", {"5": ["q1"], "7": ["q2", "q3"]}),
        ('queues={"5":["q1"],"7":["q2","q3"]}', {"5": ["q1"], "7": ["q2", "q3"]}),
        ("queues[0][]=q1&queues[1][]=q2", {"0": ["q1"], "1": ["q2"]}),
        ('queues=[["q1"],["q2"]]', {"0": ["q1"], "1": ["q2"]}),  # PHP's json_encode of that
    ],
    ids=["php-form", "json", "php-form-from-0", "php-json-from-0"],
)
def test_groups_named_by_numbers_keep_their_names(query, groups):
    assert get_groups(parse_query_string(query), "queues") == groups


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a[³]=1", {"³": "1"}),
        ("a[\u0661]=1&a[0]=2", {"\u0661": "1", "0": "2"}),  # Arabic-Indic one
        ("a[0][³]=1", [{"³": "1"}]),
        ("a[³][]=1&a[²][]=2", {"³": ["1"], "²": ["2"]}),
        (f"a[{'9' * 5000}]=1", {"9" * 5000: "1"}),  # past int()'s limit: a name too
    ],
    ids=["superscript", "arabic-indic", "nested", "groups", "5000-digits"],
)
def test_keys_of_other_digits_are_names_not_indexes(query, expected):
    """str.isdigit() says yes to "³": int() then failed (a 500 schemathesis found)."""
    assert parse_query_string(query)["a"] == expected


def test_a_member_that_is_no_text_is_named_by_its_group():
    with pytest.raises(InvalidValue, match=r"'queues\[ventas\]'"):
        get_groups({"queues": {"ventas": [None]}}, "queues")


def test_json_body_object_gives_the_same_groups():
    assert get_groups({"queues": {"ventas": ["q1", "q2"]}}, "queues") == {"ventas": ["q1", "q2"]}


def test_php_array_of_maps_becomes_a_list_of_dicts():
    params = parse_query_string(PHP_PHONES)
    assert params == {
        "name": "clientes",
        "phones": [
            {"name": "Farmacia Sol", "number": "+34 931 234 567"},
            {"name": "Bar Ñu", "number": "600"},
        ],
    }


def test_php_booleans_parse():
    params = parse_query_string(PHP_BOOLS)
    assert get_bool(params, "withMobile") is True
    assert get_bool(params, "in_use") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("0", False),
    ],
)
def test_boolean_spellings(text, expected):
    assert get_bool({"flag": text}, "flag") is expected


def test_json_booleans_pass_through():
    assert get_bool({"flag": True}, "flag") is True
    assert get_bool({}, "flag", default=True) is True


@pytest.mark.parametrize("text", ["maybe", "2", "tru", "[]"])
def test_bad_boolean_is_an_error_naming_the_parameter(text):
    with pytest.raises(InvalidValue, match="withMobile"):
        get_bool({"withMobile": text}, "withMobile")


def test_a_single_value_is_a_one_item_list():
    assert get_str_list(parse_query_string("departments=Soporte"), "departments") == ["Soporte"]


def test_a_map_where_a_list_is_expected_is_an_error():
    with pytest.raises(InvalidValue, match="departments"):
        get_str_list(parse_query_string("departments[x]=a"), "departments")


def test_a_list_where_groups_are_expected_is_an_error():
    with pytest.raises(InvalidValue, match="queues"):
        get_groups(parse_query_string("queues[]=a"), "queues")


def test_required_missing_parameter_is_an_error():
    with pytest.raises(InvalidValue, match="'name'"):
        get_str({}, "name", required=True)
    with pytest.raises(InvalidValue, match="'name'"):
        get_str({"name": "   "}, "name", required=True)


def test_text_with_control_characters_is_refused():
    with pytest.raises(InvalidValue, match="control"):
        get_str(parse_query_string("reason=a%0D%0AAction:+Originate"), "reason")
    with pytest.raises(InvalidValue, match="control"):
        get_str_list({"departments": ["ok", "bad\n"]}, "departments")


@pytest.mark.parametrize("text", ["Desc\x85anso", "x\x9b[2J", "\x80", "\x9f", "\x7f"])
def test_unicode_control_characters_are_refused_too(text):
    with pytest.raises(InvalidValue, match="control"):
        get_str({"reason": text}, "reason")


@pytest.mark.parametrize("text", ["Descanso", "Pausa ñ é ü", "\xa0\xa1 Ä", "名前", "x\u2028"])
def test_printable_text_beyond_ascii_is_kept(text):
    assert get_str({"reason": text}, "reason") == text.strip()


def test_text_too_long_is_refused():
    with pytest.raises(InvalidValue, match="255"):
        get_str({"name": "x" * 300}, "name")


def test_int_bounds():
    assert get_int({}, "hours", default=24, minimum=1, maximum=720) == 24
    assert get_int({"hours": "48"}, "hours", default=24, minimum=1, maximum=720) == 48
    for bad in ("0", "721", "x", "1.5", True):
        with pytest.raises(InvalidValue, match="hours"):
            get_int({"hours": bad}, "hours", default=24, minimum=1, maximum=720)


def test_extension_rules():
    assert clean_extension("200") == "200"
    assert clean_extension(201) == "201"
    for bad in ("", "20a", "1" * 21, "+200", "200\n"):
        with pytest.raises(InvalidValue):
            clean_extension(bad)


@pytest.mark.parametrize(
    "spelling",
    ["00:15:65:AA:BB:CC", "00-15-65-aa-bb-cc", "0015.65aa.bbcc", "001565AABBCC", "001565aabbcc"],
)
def test_mac_spellings_normalise(spelling):
    assert clean_mac(spelling) == "001565aabbcc"


@pytest.mark.parametrize("bad", ["00:15:65:AA:BB", "001565aabbcg", "", "00:15:65:AA:BB:CC:DD"])
def test_bad_mac_is_refused(bad):
    with pytest.raises(InvalidValue, match="MAC"):
        clean_mac(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+34 931 234 567", "+34931234567"),
        ("(93) 706.03-70", "937060370"),
        (600111222, "600111222"),
    ],
)
def test_phone_numbers_normalise(raw, expected):
    assert normalize_phone_number(raw) == expected


def test_a_phone_number_fills_its_column_and_no_more():
    assert normalize_phone_number("1" * 32) == "1" * 32
    assert normalize_phone_number("+" + "1" * 31) == "+" + "1" * 31
    assert normalize_phone_number("+" + "1" * 32) is None  # 33 characters: not stored
    assert normalize_phone_number("1" * 32 + "\n") == "1" * 32  # a blank, dropped


@pytest.mark.parametrize("bad", ["", "abc", "34+600", "++34", None, True, "1" * 33, "+"])
def test_bad_phone_numbers_are_none(bad):
    assert normalize_phone_number(bad) is None


@pytest.mark.parametrize("value", ["\u0661\u0662", "\uff12\uff10\uff10"])  # Arabic-Indic, fullwidth
def test_only_ascii_digits_make_an_extension_or_a_number(value):
    with pytest.raises(InvalidValue):
        clean_extension(value)
    with pytest.raises(InvalidValue):
        get_int({"hours": value}, "hours", default=24, minimum=1, maximum=720)
