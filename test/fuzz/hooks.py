"""Schemathesis hooks for credit-mesh (SCHEMATHESIS_HOOKS=hooks, run by test/fuzz.test.ts).

- Formats our JSON Schema cannot spell out: `cpf` (check digits) and `date-br` (a real calendar date).
- NDJSON: valid movement lines for POST /transactions, and a deserializer for GET /ml/features.
- Business rules across fields, applied to generated data so that "valid" means valid to the server:
  a possession starts after the birth, `from` <= `to`; the opaque `after` cursors are left out.
- Checks of our own: no stack trace, SQL or CPF in an error body, and (FUZZ_EXPECT_DENIED=1) no 2xx at
  all under the API prefix for the key that holds no scope.
"""

import json
import os
import re
from datetime import date

import schemathesis
from hypothesis import strategies as st

API_PREFIX = "/api/v1/"
MOVEMENT_TYPES = [t for t in os.environ.get("FUZZ_MOVEMENT_TYPES", "").split(",") if t]


# ---------------------------------------------------------------- CPF and dates


def cpf_digit(digits: str) -> int:
    total = sum(int(d) * w for d, w in zip(digits, range(len(digits) + 1, 1, -1)))
    rest = (total * 10) % 11
    return 0 if rest == 10 else rest


def is_valid_cpf(digits: str) -> bool:
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    return cpf_digit(digits[:9]) == int(digits[9]) and cpf_digit(digits[:10]) == int(digits[10])


def cpf_from(n: int, dotted: bool) -> str:
    base = f"{n:09d}"
    first = base + str(cpf_digit(base))
    digits = first + str(cpf_digit(first))
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}" if dotted else digits


CPFS = st.builds(cpf_from, st.integers(0, 999_999_999), st.booleans()).filter(lambda c: is_valid_cpf(re.sub(r"\D", "", c)))


def date_text(d: date, iso: bool) -> str:
    return d.isoformat() if iso else d.strftime("%d/%m/%Y")


# Past dates only: births, possessions and payments in the future are refused by rule, not by format.
DATES = st.builds(date_text, st.dates(min_value=date(1900, 1, 1), max_value=date.today()), st.booleans())

schemathesis.openapi.format("cpf", CPFS)
schemathesis.openapi.format("date-br", DATES)


def parse_date(value):
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", value)
    try:
        if m:
            return date(int(m[3]), int(m[2]), int(m[1]))
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


# ---------------------------------------------------------------- NDJSON


MOVEMENT = st.fixed_dictionaries({
    "cpf": CPFS,
    "tipo": st.sampled_from(MOVEMENT_TYPES or ["pix"]),
    "valor": st.integers(0, 10_000_000).map(lambda cents: cents / 100),
    "data": DATES,
})
schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.lists(MOVEMENT, min_size=1, max_size=5).map(lambda ms: "".join(json.dumps(m) + "\n" for m in ms).encode()),
)


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    text = response.content.decode(response.encoding or "utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- rules across fields


@schemathesis.hook
def map_body(ctx, body):
    op = ctx.operation
    if op is None or op.method.upper() != "PUT" or not op.path.startswith(API_PREFIX + "profiles/"):
        return body
    if not isinstance(body, dict) or not isinstance(body.get("bens"), list):
        return body
    birth = parse_date(body.get("dataNascimento"))
    if birth is None:
        return body
    for item in body["bens"]:
        if isinstance(item, dict):
            start = parse_date(item.get("inicioPosse"))
            if start is not None and start < birth:
                item["inicioPosse"] = body["dataNascimento"]
    return body


@schemathesis.hook
def map_query(ctx, query):
    if not isinstance(query, dict):
        return query
    # Cursors are opaque: only a `next` the server gave out is valid, which generation cannot know.
    query.pop("after", None)
    start, end = parse_date(query.get("from")), parse_date(query.get("to"))
    if start and end and start > end:
        query["from"], query["to"] = query["to"], query["from"]
    return query


# ---------------------------------------------------------------- checks

STACK = re.compile(r"\n\s+at \S|\(\S+\.(?:js|ts|mjs):\d+:\d+\)|node_modules|Traceback \(most recent", re.I)
SQL = re.compile(r"\b(?:SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM)\b|Sequelize|syntax error at|relation \"|violates .* constraint|duplicate key", re.I)
CPF_LIKE = re.compile(r"(?<!\d)(\d{3}\.?\d{3}\.?\d{3}-?\d{2})(?!\d)")


@schemathesis.check
def error_body_leaks_nothing(ctx, response, case):
    """An error body names no stack frame, no SQL and no CPF."""
    if response.status_code < 400:
        return None
    text = response.content.decode("utf-8", "replace")
    if STACK.search(text):
        raise AssertionError(f"Stack trace in a {response.status_code} body")
    if SQL.search(text):
        raise AssertionError(f"SQL in a {response.status_code} body")
    for m in CPF_LIKE.finditer(text):
        if is_valid_cpf(re.sub(r"\D", "", m.group(1))):
            raise AssertionError(f"A CPF in a {response.status_code} body")
    return None


@schemathesis.check
def unscoped_key_is_refused(ctx, response, case):
    """With FUZZ_EXPECT_DENIED=1 the run's key holds no scope: nothing under the API prefix may succeed."""
    if os.environ.get("FUZZ_EXPECT_DENIED") != "1":
        return None
    # OPTIONS answers anyone with the path's Allow list and nothing else (no action runs).
    if case.method.upper() == "OPTIONS":
        return None
    if case.operation.path.startswith(API_PREFIX) and 200 <= response.status_code < 300:
        raise AssertionError(f"{response.status_code} for a key without scopes")
    return None
