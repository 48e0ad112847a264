"""SWAN request parameters: PHP-style arrays and maps, JSON strings and bodies, typed getters.

PHP's `http_build_query` writes `a[]=1&a[]=2`, `a[0]=1&a[1]=2` and `m[k][]=v`; other clients
repeat keys (`a=1&a=2`) or send JSON, as a string in one parameter or as the body. Every form
parses to the same value. Getters raise `InvalidValue` (a 400 envelope) naming the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _

from pbx.errors import InvalidValue
from pbx.text import has_control_character

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"[0-9]{1,18}")  # longer is a name: int() stops at 4,300 digits
_INTEGER = re.compile(r"-?[0-9]{1,9}")
_DESTINATION = re.compile(r"\+?[0-9*#]+")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def split_key(key: str) -> tuple[str, list[str]]:
    """`queues[ventas][]` → ("queues", ["ventas", ""]); deeper than SWAN_PARAM_MAX_DEPTH: 400."""
    first = key.find("[")
    if first <= 0 or not key.endswith("]"):
        return key, []
    rest = key[first:]
    parts = _BRACKETS.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        return key, []  # not a clean bracket suffix: take the key literally, as PHP nearly does
    name = key[:first]
    if len(parts) > settings.SWAN_PARAM_MAX_DEPTH:
        raise InvalidValue(
            _("The parameter '%(name)s' is nested more than %(max)s levels deep.")
            % {"name": name[:40], "max": settings.SWAN_PARAM_MAX_DEPTH}
        )
    return name, parts


def _insert(container: dict, path: list[str], value: Any) -> None:
    head, *tail = path
    if head == "":
        head = _next_index(container)
    if not tail:
        container[head] = value
        return
    child = container.get(head)
    if not isinstance(child, dict):
        child = {}
        container[head] = child
    _insert(child, tail, value)


def _is_index(key: str) -> bool:
    # ASCII digits only: str.isdigit() is true for "³" and Arabic-Indic digits, which int()
    # refuses or reads.
    return _INDEX.fullmatch(key) is not None


def _next_index(container: dict) -> str:
    numeric = [int(k) for k in container if _is_index(k)]
    return str(max(numeric) + 1 if numeric else 0)


class IndexedList(list):
    """A list read from `name[5]=…&name[7]=…`: the items by key, and the keys, which a map
    parameter (get_groups) needs: a group may be named 5."""

    def __init__(self, items: dict[str, Any]) -> None:
        self.indexes = sorted(items, key=int)
        super().__init__(items[k] for k in self.indexes)


def _listify(node: Any) -> Any:
    """Maps whose keys are all integers become lists ordered by key, as PHP arrays read."""
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(_is_index(k) for k in node):
        return IndexedList(node)
    return node


def parse_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Builds the parameter tree from ordered (key, value) pairs; a repeated plain key is a list."""
    tree: dict[str, Any] = {}
    for key, value in pairs:
        name, path = split_key(key)
        if path:
            current = tree.get(name)
            if not isinstance(current, dict):
                current = {}
                tree[name] = current
            _insert(current, path, value)
        elif name in tree:
            existing = tree[name]
            tree[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            tree[name] = value
    return {k: _listify(v) for k, v in tree.items()}


def parse_query_string(query: str) -> dict[str, Any]:
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def request_params(request, *, body_array_param: str | None = None) -> dict[str, Any]:
    """The parameters of a DRF request: the query string, and for POST/DELETE the body over it.

    Every text in them, keys included, must be encodable as UTF-8 (a JSON `\\ud800` is not).
    """
    params = _read_params(request, body_array_param)
    for name, value in params.items():
        check_encodable(name, value)
    return params


def check_body_size(request) -> None:
    """A declared body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused before it is read: 413.

    Django checks it only for forms; DRF's JSON parser reads the stream whatever its size.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if limit is not None and length > limit:
        raise RequestDataTooBig(f"body of {length} bytes")


def _read_params(request, body_array_param: str | None) -> dict[str, Any]:
    params = parse_pairs(_query_pairs(request.query_params))
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return params
    data = request.data
    if isinstance(data, list):
        if body_array_param is None:
            raise InvalidValue(_("The JSON body must be an object."))
        params[body_array_param] = data
    elif hasattr(data, "lists"):  # form or multipart QueryDict
        params.update(parse_pairs(_query_pairs(data)))
    elif isinstance(data, Mapping):
        params.update(data)
    elif data not in (None, ""):
        raise InvalidValue(_("The JSON body must be an object."))
    return params


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \\ud800 escape can carry
        return False
    return True


def check_encodable(name: str, value: Any) -> None:
    """Raises InvalidValue naming `name` if a text anywhere in `value` is not valid UTF-8.

    Walks the value with a stack, not recursion: a JSON body may be nested ~1000 levels deep.
    """
    stack = [name, value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                raise InvalidValue(
                    _("The parameter '%(name)s' is not valid UTF-8 text.")
                    % {"name": name.encode("utf-8", "replace").decode()[:40]}
                )
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def check_path_segment(name: str, value: str) -> str:
    """A path parameter: no control characters, valid UTF-8 (PostgreSQL refuses NUL in text)."""
    if has_control_character(value) or not _encodable(value):
        raise InvalidValue(
            _("The parameter '%(name)s' contains control characters.") % {"name": name}
        )
    return value


def _query_pairs(querydict) -> list[tuple[str, Any]]:
    return [(key, value) for key, values in querydict.lists() for value in values]


def get_str(
    params: Mapping[str, Any], name: str, *, required: bool = False, max_length: int = 255
) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise InvalidValue(_("The parameter '%(name)s' is required.") % {"name": name})
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidValue(_("The parameter '%(name)s' must be a text.") % {"name": name})
    value = str(value)
    if has_control_character(value):
        raise InvalidValue(
            _("The parameter '%(name)s' contains control characters.") % {"name": name}
        )
    value = value.strip()
    if len(value) > max_length:
        raise InvalidValue(
            _("The parameter '%(name)s' is longer than %(max)s characters.")
            % {"name": name, "max": max_length}
        )
    if required and not value:
        raise InvalidValue(_("The parameter '%(name)s' is required.") % {"name": name})
    return value or None


def get_bool(params: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidValue(
        _("The parameter '%(name)s' must be a boolean (true/false, 1/0, yes/no, on/off).")
        % {"name": name}
    )


def get_int(
    params: Mapping[str, Any], name: str, *, default: int, minimum: int, maximum: int
) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        value = None
    text = str(value).strip() if value is not None else ""
    number = int(text) if _INTEGER.fullmatch(text) else None
    if number is None or not minimum <= number <= maximum:
        raise InvalidValue(
            _("The parameter '%(name)s' must be a whole number from %(min)s to %(max)s.")
            % {"name": name, "min": minimum, "max": maximum}
        )
    return number


def _decode_json_string(value: Any, name: str) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            decoded = json.loads(value)
        except (json.JSONDecodeError, RecursionError):  # not JSON, or nested past any sense
            return value
        except ValueError as exc:  # an integer past Python's int-string limit (4300 digits)
            raise InvalidValue(
                _("The parameter '%(name)s' holds a number that is too long.") % {"name": name}
            ) from exc
        check_encodable(name, decoded)
        return decoded
    return value


def get_list(params: Mapping[str, Any], name: str, *, required: bool = False) -> list[Any] | None:
    """A list parameter in any of its spellings; a lone scalar is a one-item list."""
    value = _decode_json_string(params.get(name), name)
    if value is None or value == "" or value == []:
        if required:
            raise InvalidValue(
                _("The parameter '%(name)s' is required and must not be empty.") % {"name": name}
            )
        return None
    if isinstance(value, Mapping):
        if all(_is_index(str(k)) for k in value):
            return [value[k] for k in sorted(value, key=lambda k: int(k))]
        raise InvalidValue(_("The parameter '%(name)s' must be an array.") % {"name": name})
    if isinstance(value, list):
        return value
    return [value]


def get_str_list(
    params: Mapping[str, Any], name: str, *, required: bool = False
) -> list[str] | None:
    items = get_list(params, name, required=required)
    if items is None:
        return None
    result = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise InvalidValue(
                _("The parameter '%(name)s' must be an array of texts.") % {"name": name}
            )
        text = str(item)
        if has_control_character(text):
            raise InvalidValue(
                _("The parameter '%(name)s' contains control characters.") % {"name": name}
            )
        result.append(text.strip())
    return result


def get_groups(
    params: Mapping[str, Any], name: str, *, required: bool = False
) -> dict[str, list[str]] | None:
    """A map of group name → list of texts: `{ '{queueGroup}': ['{queue1}', ...], ... }`."""
    value = _decode_json_string(params.get(name), name)
    if value is None or value == "" or value == {} or value == []:
        if required:
            raise InvalidValue(_("The parameter '%(name)s' is required.") % {"name": name})
        return None
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        # Groups named by numbers, as PHP writes them: `queues[5][]=q1` or, keyed 0, 1…,
        # json_encode's `[["q1"], ["q2"]]`. A list of names (`queues[]=q1`) is no map.
        indexes = value.indexes if isinstance(value, IndexedList) else range(len(value))
        value = {str(index): members for index, members in zip(indexes, value, strict=True)}
    if not isinstance(value, Mapping):
        raise InvalidValue(
            _("The parameter '%(name)s' must be a map of group names to arrays of names.")
            % {"name": name}
        )
    groups: dict[str, list[str]] = {}
    for group, members in value.items():
        if has_control_character(str(group)):
            raise InvalidValue(
                _("The parameter '%(name)s' contains control characters.") % {"name": name}
            )
        where = f"{name}[{str(group)[:40]}]"
        groups[str(group)] = get_str_list({where: members}, where) or []
    return groups


def get_choice(params: Mapping[str, Any], name: str, *, choices: Sequence[str]) -> str:
    value = get_str(params, name, required=True)
    if value not in choices:
        raise InvalidValue(
            _("The parameter '%(name)s' must be one of: %(choices)s.")
            % {"name": name, "choices": ", ".join(choices)}
        )
    return value


def clean_destination(value: str) -> str:
    """Click-to-call destination: digits with an optional leading +, and * or #, at most 32."""
    if len(value) > 32 or not _DESTINATION.fullmatch(value):
        raise InvalidValue(
            _(
                "'%(value)s' is not a valid destination: digits, * and # with an optional leading +, at most 32 characters."
            )
            % {"value": value[:40]}
        )
    return value
