"""The seed documents (``tests/acceptance/seeds/``, copies of the originals: see the README there), read as data: the
example requests and responses they print, and a comparison that names every difference from an example.

The documents are not clean JSON: a Confluence export (no-break spaces, ``.....`` where rows were left out) and a
Markdown page with ``//`` comments and type placeholders (``INT``) beside its examples. ``json_objects`` reads what
is JSON once those are taken out; nothing else is retyped by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

SEEDS = Path(__file__).resolve().parent / "seeds"
_DECODER = json.JSONDecoder()
_ELISION = re.compile(r"^\s*\.{3,}\s*$", re.M)
# Seed 003's list example leaves rows out as ``},\n.....\n    }``: the dots and the brace end the elided rows.
_ELIDED_ROWS = re.compile(r",\s*\n\s*\.{3,}\s*\n\s*\}")
_COMMENT = re.compile(r"\s*//[^\n]*")
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
CRM_METHOD = re.compile(r"^(GET|POST) conax_web_services/provisioning_requests/(\w+)\s*$", re.M)
Shapes = dict[str, Callable[[Any, Any], bool]]  # path pattern: (answer value, example value) -> alike


@cache
def seed_text(number: str) -> str:
    """The document whose file name starts with ``number`` (``"003"``)."""
    (path,) = SEEDS.glob(f"{number}_*.txt")
    return path.read_text(encoding="utf-8")


def _clean(text: str) -> str:
    text = _ELISION.sub("", text.replace("\xa0", " "))
    return _TRAILING_COMMA.sub(r"\1", text)


def json_objects(text: str) -> list[Any]:
    """Every outermost JSON object in ``text``, in order; a ``{`` that starts no valid JSON is skipped."""
    text, found, at = _clean(text), [], 0
    while (start := text.find("{", at)) != -1:
        try:
            value, at = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(value)
    return found


@cache
def crm_examples() -> dict[str, tuple[dict | None, dict]]:
    """Seed 003: per method (``add_subscriptions``), its example's request body (None for a GET, whose parameters
    the document does not print) and its response."""
    parts = CRM_METHOD.split(_ELIDED_ROWS.sub("", seed_text("003").replace("\xa0", " ")))
    examples = {}
    for verb, method, section in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        objects = json_objects(section)
        request = objects.pop(0) if verb == "POST" else None
        (response,) = objects
        examples[method] = (request, response)
    return examples


@cache
def marked_examples(number: str, marker: str = "//  Example") -> list[Any]:
    """The JSON value after each ``marker`` comment of a Markdown document, in order (seed 004's examples)."""
    text = seed_text(number)
    found = []
    for match in re.finditer(re.escape(marker), text):
        rest = _COMMENT.sub("", text[match.end() :].split("```", 1)[0])
        found.append(json_objects(rest)[0])
    return found


def differences(
    answer: Any, example: Any, shapes: Shapes | None = None, *, values: bool = True, path: str = ""
) -> list[str]:
    """Every way ``answer`` differs from ``example``: keys missing or extra, keys in another order, lists of another
    length, values not equal (unless ``values`` is false: the structure only). ``shapes`` maps a path pattern (a
    regular expression fullmatching the path without list indices, ``.data.id``) to a predicate of the answer's and
    the example's value, checked instead of equality, for values that necessarily differ (ids, tokens, dates)."""
    shapes = shapes or {}
    if isinstance(example, dict) and isinstance(answer, dict):
        return _dict_differences(answer, example, shapes, values, path)
    if isinstance(example, list) and isinstance(answer, list):
        if len(answer) != len(example):
            return [f"{path}: {len(answer)} items, the example has {len(example)}"]
        return [
            d
            for n, (a, e) in enumerate(zip(answer, example, strict=True))
            for d in differences(a, e, shapes, values=values, path=f"{path}[{n}]")
        ]
    if values and (answer != example or type(answer) is not type(example)):
        return [f"{path}: {answer!r}, the example has {example!r}"]
    return []


def _shape(shapes: Shapes, path: str) -> Callable[[Any, Any], bool] | None:
    bare = re.sub(r"\[\d+\]", "", path)
    return next((check for pattern, check in shapes.items() if re.fullmatch(pattern, bare)), None)


def _dict_differences(answer: dict, example: dict, shapes: Shapes, values: bool, path: str) -> list[str]:
    found = [f"{path}: missing {key!r}" for key in example if key not in answer]
    found += [f"{path}: extra {key!r}" for key in answer if key not in example]
    common = [key for key in example if key in answer]
    if [key for key in answer if key in example] != common:
        found.append(f"{path}: keys in the order {[k for k in answer if k in example]}, the example has {common}")
    for key in common:
        where = f"{path}.{key}"
        check = _shape(shapes, where)
        if check is not None:
            if not check(answer[key], example[key]):
                found.append(f"{where}: {answer[key]!r} is not shaped like {example[key]!r}")
        else:
            found += differences(answer[key], example[key], shapes, values=values, path=where)
    return found


# --- Thunder's generated plugin documents (seeds 000 and 001) --------------------------------------------------------
# Each method, property or event is a section opened by ``<a name="…"></a>`` and a ``## *name*`` heading; its
# examples are fenced ``json`` blocks under ``#### Request`` / ``#### Response`` (``Get Request`` / ``Get Response``
# for a property, a bare ``### Example`` for an event).
_SECTION = re.compile(r'^<a name="(?P<anchor>[^"]+)"></a>\n## \*', re.M)
_BLOCK = re.compile(r"^#{3,4} (?P<heading>[^\n]+)\n+```json\n(?P<body>.*?)^```", re.M | re.S)
_ERROR_ROW = re.compile(r"^\| (?P<code>-?\d+) \| ```(?P<message>\w+)``` \|", re.M)
_VERSION_NOTE = re.compile(r"^\(Version (\d+)\)", re.M)


@cache
def thunder_sections(number: str) -> dict[str, str]:
    """Seed ``number``'s sections by anchor (``getSOCId``, ``method.provision``, ``event.provisioningchange``), each
    its text up to the next anchor."""
    text = seed_text(number)
    starts = list(_SECTION.finditer(text))
    ends = [match.start() for match in starts[1:]] + [len(text)]
    return {match["anchor"]: text[match.start() : end] for match, end in zip(starts, ends, strict=True)}


def thunder_examples(number: str, anchor: str) -> dict[str, str]:
    """The example blocks of one section, by heading (``Request``, ``Get Response``, ``Example``), each exactly as
    the document prints it (its last newline included): the bytes a box is sent, the text it must answer."""
    return {m["heading"]: m["body"] for m in _BLOCK.finditer(thunder_sections(number)[anchor])}


def thunder_errors(number: str, anchor: str) -> list[tuple[int, str]]:
    """The (code, message) rows of a section's Errors table, in order; none where the section has no table."""
    return [(int(m["code"]), m["message"]) for m in _ERROR_ROW.finditer(thunder_sections(number)[anchor])]


def thunder_since(number: str, anchor: str) -> int:
    """The API version a method first appears in: its description's ``(Version N)`` note, else 1."""
    note = _VERSION_NOTE.search(thunder_sections(number)[anchor])
    return int(note[1]) if note else 1


def one_of(number: str, anchor: str, field: str) -> list[str]:
    """The values the table row ``field`` of a section allows: ``(must be one of the following: *A*, *B*)``."""
    row = re.search(
        rf"^\| {re.escape(field)} \|[^\n]*\(must be one of the following: ([^)]*)\)",
        thunder_sections(number)[anchor],
        re.M,
    )
    if row is None:
        raise LookupError(f"seed {number}, {anchor}: no row {field!r} listing its values")
    return re.findall(r"\*(\w+)\*", row[1])


# --- the Exosite provisioning page (seed 002, reStructuredText) ------------------------------------------------------
_HTTP_BLOCK = re.compile(r"^\.\. code-block:: http\n\n(?P<body>(?:(?: {4}[^\n]*)?\n)+)", re.M)
_CODE_ITEM = re.compile(r"^ *\d+\. `(?P<code>\d{3})` -- (?P<meaning>.+?)(?=\n *\d+\. `|\Z)", re.M | re.S)


@cache
def exosite_request() -> tuple[str, str, dict[str, str], str]:
    """Seed 002's HTTP request block as (method, path, headers in order, body), its placeholders (``<vendor>``,
    ``<length>``) left in."""
    (block,) = _HTTP_BLOCK.finditer(seed_text("002"))
    lines = [line.removeprefix("    ").rstrip() for line in block["body"].strip("\n").split("\n")]
    blank = lines.index("")
    method, path, version = lines[0].split(" ")
    assert version == "HTTP/1.1", version
    headers = dict(line.split(": ", 1) for line in lines[1:blank])
    return method, path, headers, "\n".join(lines[blank + 1 :])


@cache
def exosite_codes() -> dict[int, str]:
    """Seed 002's response codes, in its order, each with what the document says it means (one line)."""
    return {int(m["code"]): " ".join(m["meaning"].split()) for m in _CODE_ITEM.finditer(seed_text("002"))}


# --- replaying them on a simulated box, over a real socket ----------------------------------------------------------
THUNDER_TIMEOUT = 5.0


def compact(example: str | dict) -> bytes:
    """A document's example (its text, or the value read from it) as a Thunder box writes it: compact JSON, keys in
    the example's order."""
    value = json.loads(example) if isinstance(example, str) else example
    return json.dumps(value, separators=(",", ":")).encode()


def thunder_post(url: str, raw: str) -> httpx.Response:
    """``raw`` (an example's exact text) as the body of ``POST /jsonrpc``, Thunder's HTTP interface."""
    return httpx.post(url, content=raw.encode(), timeout=THUNDER_TIMEOUT)


def thunder_frames(ws_url: str, *raws: str, then: int = 0) -> list[bytes]:
    """Each of ``raws`` as one text frame on one WebSocket (subprotocol ``notification``, as ThunderJS opens it),
    the answer of each awaited before the next is sent, then ``then`` more frames (notifications) read."""
    with connect(ws_url, subprotocols=["notification"], open_timeout=THUNDER_TIMEOUT) as ws:
        frames = []
        for raw in raws:
            ws.send(raw)
            frames.append(ws.recv(THUNDER_TIMEOUT, decode=False))
        frames += [ws.recv(THUNDER_TIMEOUT, decode=False) for _ in range(then)]
    return frames
