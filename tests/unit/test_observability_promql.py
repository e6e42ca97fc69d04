"""A PromQL parser for the observability tests, and its own tests.

The dashboards and alert rules of gpuops.platform.observability are checked
here without Prometheus (the integration test runs every query on a live one).
`parse` follows Prometheus' grammar (generated_parser.y): literals, vector
and range selectors, subqueries, offset and @ modifiers, function calls,
aggregations with by/without before or after, binary operators with their
precedence, bool, on/ignoring and group_left/group_right. It also checks
types the way Prometheus does (a range vector where a function needs one,
none where it does not) and knows every function name of Prometheus 2.42
(Debian's, the oldest that gpuops runs), so a misspelt function fails here.

Grafana variables must be substituted before parsing (see `substitute`).
Not supported: metric names starting with ':' (legal, never used by gpuops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

# name -> argument types ("v" instant vector, "m" range vector, "s" scalar,
# "str" string); a trailing "*" makes the last argument optional/repeatable.
FUNCTIONS: dict[str, tuple[list[str], str]] = {
    "abs": (["v"], "v"), "absent": (["v"], "v"), "absent_over_time": (["m"], "v"),
    "acos": (["v"], "v"), "acosh": (["v"], "v"), "asin": (["v"], "v"), "asinh": (["v"], "v"),
    "atan": (["v"], "v"), "atanh": (["v"], "v"), "avg_over_time": (["m"], "v"), "ceil": (["v"], "v"),
    "changes": (["m"], "v"), "clamp": (["v", "s", "s"], "v"), "clamp_max": (["v", "s"], "v"),
    "clamp_min": (["v", "s"], "v"), "cos": (["v"], "v"), "cosh": (["v"], "v"), "count_over_time": (["m"], "v"),
    "days_in_month": (["v*"], "v"), "day_of_month": (["v*"], "v"), "day_of_week": (["v*"], "v"),
    "day_of_year": (["v*"], "v"), "deg": (["v"], "v"), "delta": (["m"], "v"), "deriv": (["m"], "v"),
    "exp": (["v"], "v"), "floor": (["v"], "v"), "histogram_quantile": (["s", "v"], "v"),
    "holt_winters": (["m", "s", "s"], "v"), "hour": (["v*"], "v"), "idelta": (["m"], "v"),
    "increase": (["m"], "v"), "irate": (["m"], "v"),
    "label_replace": (["v", "str", "str", "str", "str"], "v"), "label_join": (["v", "str", "str", "str*"], "v"),
    "last_over_time": (["m"], "v"), "ln": (["v"], "v"), "log10": (["v"], "v"), "log2": (["v"], "v"),
    "max_over_time": (["m"], "v"), "min_over_time": (["m"], "v"), "minute": (["v*"], "v"),
    "month": (["v*"], "v"), "pi": ([], "s"), "predict_linear": (["m", "s"], "v"),
    "present_over_time": (["m"], "v"), "quantile_over_time": (["s", "m"], "v"), "rad": (["v"], "v"),
    "rate": (["m"], "v"), "resets": (["m"], "v"), "round": (["v", "s*"], "v"), "scalar": (["v"], "s"),
    "sgn": (["v"], "v"), "sin": (["v"], "v"), "sinh": (["v"], "v"), "sort": (["v"], "v"),
    "sort_desc": (["v"], "v"), "sqrt": (["v"], "v"), "stddev_over_time": (["m"], "v"),
    "stdvar_over_time": (["m"], "v"), "sum_over_time": (["m"], "v"), "tan": (["v"], "v"),
    "tanh": (["v"], "v"), "time": ([], "s"), "timestamp": (["v"], "v"), "vector": (["s"], "v"),
    "year": (["v*"], "v"),
}
AGGREGATIONS = {"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
                "count_values", "quantile"}
AGGREGATIONS_WITH_PARAM = {"topk": "s", "bottomk": "s", "quantile": "s", "count_values": "str"}
# Binary operators by precedence, lowest first; "^" is right-associative.
PRECEDENCE = [{"or"}, {"and", "unless"}, {"==", "!=", "<=", "<", ">=", ">"}, {"+", "-"},
              {"*", "/", "%", "atan2"}, {"^"}]
COMPARISONS = PRECEDENCE[2]
SET_OPERATORS = PRECEDENCE[0] | PRECEDENCE[1]
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
            "and", "or", "unless", "atan2"}

DURATION = r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+"
TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<duration>{DURATION}(?![A-Za-z0-9_]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){{}}\[\],:@])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    """The expression is not valid PromQL."""


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(expr: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if not match:
            raise PromQLError(f"unexpected character {expr[pos]!r} at {pos} in {expr!r}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(expr)))
    return tokens


class Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str) -> PromQLError:
        return PromQLError(f"{message} at {self.tok.pos} ({self.tok.text or 'end'!r}) in {self.expr!r}")

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        tok = self.tok
        if (text is not None and tok.text.lower() != text) or (kind is not None and tok.kind != kind):
            raise self.error(f"expected {text or kind}")
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "ident") and self.tok.text.lower() in texts

    # grammar
    def parse(self) -> str:
        kind = self.expression(0)
        if self.tok.kind != "eof":
            raise self.error("unexpected token")
        return kind

    def binary_operator(self, level: int) -> str | None:
        tok = self.tok
        if tok.kind in ("op", "ident") and tok.text.lower() in PRECEDENCE[level]:
            # An identifier such as "and" is an operator only after an operand.
            return tok.text.lower()
        return None

    def expression(self, level: int) -> str:
        if level == len(PRECEDENCE):
            return self.unary()
        left = self.expression(level + 1)
        while (op := self.binary_operator(level)) is not None:
            self.i += 1
            returns_bool = False
            if op in COMPARISONS and self.at("bool"):
                self.i += 1
                returns_bool = True
            if self.at("on", "ignoring"):
                self.i += 1
                self.label_list()
                if self.at("group_left", "group_right"):
                    if op in SET_OPERATORS:
                        raise self.error("no grouping allowed for set operations")
                    self.i += 1
                    if self.at("("):
                        self.label_list()
            # "^" is right-associative: its right side binds at the same level.
            right = self.expression(level if op == "^" else level + 1)
            left = self.binary_type(op, left, right, returns_bool)
        return left

    def binary_type(self, op: str, left: str, right: str, returns_bool: bool) -> str:
        for side in (left, right):
            if side not in ("s", "v"):
                raise self.error(f"binary operator {op!r} needs scalars or instant vectors, got a {side}")
        if op in SET_OPERATORS and "s" in (left, right):
            raise self.error(f"set operator {op!r} needs instant vectors on both sides")
        if op in COMPARISONS and left == right == "s" and not returns_bool:
            raise self.error("comparisons between scalars must use the bool modifier")
        return "v" if "v" in (left, right) else "s"

    def unary(self) -> str:
        if self.at("-", "+"):
            self.i += 1
            kind = self.unary()
            if kind not in ("s", "v"):
                raise self.error("unary sign needs a scalar or an instant vector")
            return kind
        return self.postfix(self.primary())

    def postfix(self, kind: str) -> str:
        while True:
            if self.at("["):
                self.i += 1
                self.take(kind="duration")
                if self.at(":"):
                    self.i += 1
                    if self.tok.kind == "duration":
                        self.i += 1
                    if kind != "v":
                        raise self.error("subqueries need an instant vector")
                elif kind != "selector":
                    raise self.error("a range needs a vector selector")
                self.take("]")
                kind = "m"
            elif self.at("offset"):
                self.i += 1
                if self.at("-"):
                    self.i += 1
                self.take(kind="duration")
                self.need_vector(kind, "offset")
            elif self.at("@"):
                self.i += 1
                if self.at("start", "end"):
                    self.i += 1
                    self.take("(")
                    self.take(")")
                else:
                    if self.at("-", "+"):
                        self.i += 1
                    self.take(kind="number")
                self.need_vector(kind, "@")
            else:
                return "v" if kind == "selector" else kind

    def need_vector(self, kind: str, what: str) -> None:
        if kind not in ("selector", "v", "m"):
            raise self.error(f"{what} needs a vector selector or subquery")

    def primary(self) -> str:
        tok = self.tok
        if tok.kind == "number" or (tok.kind == "ident" and tok.text.lower() in ("inf", "nan")):
            self.i += 1
            return "s"
        if tok.kind == "duration":
            raise self.error("a duration is not a value")
        if tok.kind == "string":
            self.i += 1
            return "str"
        if self.at("("):
            self.i += 1
            kind = self.expression(0)
            self.take(")")
            return kind
        if self.at("{"):
            if not self.label_matchers(need_nonempty=True):
                raise self.error("a vector selector needs a metric name or a non-empty matcher")
            return "selector"
        if tok.kind == "ident":
            name = tok.text
            lower = name.lower()
            following = self.tokens[self.i + 1]
            if lower in AGGREGATIONS and (following.text == "(" or following.text.lower() in ("by", "without")):
                return self.aggregation(lower)
            if following.text == "(" and name in FUNCTIONS:
                return self.call(name)
            if following.text == "(":
                raise self.error(f"unknown function {name!r}")
            if lower in KEYWORDS:
                raise self.error(f"unexpected keyword {name!r}")
            self.i += 1
            if self.at("{"):
                self.label_matchers(need_nonempty=False)
            return "selector"
        raise self.error("unexpected token")

    def label_list(self) -> None:
        self.take("(")
        while not self.at(")"):
            self.take(kind="ident")
            if not self.at(")"):
                self.take(",")
        self.take(")")

    def label_matchers(self, need_nonempty: bool) -> bool:
        self.take("{")
        nonempty = False
        while not self.at("}"):
            self.take(kind="ident")
            op = self.tok.text
            if op not in ("=", "!=", "=~", "!~"):
                raise self.error("expected a label matching operator")
            self.i += 1
            value = self.take(kind="string").text[1:-1]
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise self.error(f"invalid regular expression {value!r}: {exc}") from exc
            matches_empty = {
                "=": value == "",
                "!=": value != "",
                "=~": re.fullmatch(value, "") is not None,
                "!~": re.fullmatch(value, "") is None,
            }[op]
            nonempty = nonempty or not matches_empty
            if not self.at("}"):
                self.take(",")
        self.take("}")
        return nonempty or not need_nonempty

    def arguments(self) -> list[str]:
        self.take("(")
        kinds = []
        while not self.at(")"):
            kinds.append(self.expression(0))
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return kinds

    def call(self, name: str) -> str:
        self.i += 1
        kinds = self.arguments()
        params, returns = FUNCTIONS[name]
        required = [p for p in params if not p.endswith("*")]
        optional = [p.rstrip("*") for p in params if p.endswith("*")]
        repeat = name == "label_join"
        if len(kinds) < len(required) or (not repeat and len(kinds) > len(params)):
            raise self.error(f"{name}() takes {len(required)}-{len(params)} arguments, got {len(kinds)}")
        expected = required + optional * max(0, len(kinds) - len(required))
        for index, (kind, want) in enumerate(zip(kinds, expected, strict=False)):
            if kind != want:
                names = {"v": "an instant vector", "m": "a range vector", "s": "a scalar", "str": "a string"}
                raise self.error(f"argument {index + 1} of {name}() must be {names[want]}, got {names[kind]}")
        return returns

    def aggregation(self, name: str) -> str:
        self.i += 1
        if self.at("by", "without"):
            self.i += 1
            self.label_list()
        kinds = self.arguments()
        if self.at("by", "without"):
            self.i += 1
            self.label_list()
        param = AGGREGATIONS_WITH_PARAM.get(name)
        expected = ([param] if param else []) + ["v"]
        if kinds != expected:
            raise self.error(f"{name}() needs arguments ({', '.join(expected)}), got ({', '.join(kinds)})")
        return "v"


def parse(expr: str) -> str:
    """Parse a PromQL expression; return its type (s, v, m, str) or raise PromQLError."""
    return Parser(expr).parse()


# Grafana's built-in variables, with values that make valid PromQL.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "__range_s": "300",
                    "__interval_ms": "15000"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables ($name, ${name}, ${name:format}, [[name]]) by values."""
    values = {**GRAFANA_BUILTINS, **values}

    def replace(match: re.Match) -> str:
        name = match.group("braced") or match.group("plain") or match.group("old")
        if name not in values:
            raise KeyError(f"no value for Grafana variable {name!r} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\$(?P<plain>\w+)|\[\[(?P<old>\w+)\]\]", replace, expr)


# --- the parser's own tests ---------------------------------------------------------

VALID = [
    'DCGM_FI_DEV_GPU_TEMP{instance=~"pod-0", gpu=~"0"}',
    "avg(DCGM_FI_DEV_GPU_TEMP)",
    "sum by (state) (gpuops_slurm_nodes)",
    "sum(gpuops_slurm_nodes) by (state)",
    'count(ALERTS{alertstate="firing"}) or vector(0)',
    "100 * sum(a) / sum(b)",
    "rate(x[5m]) / 1000",
    "increase(x{a=\"b\"}[1h30m])",
    "avg_over_time(x[30m]) < 5 and x offset 30m",
    "changes(x[10m]) > 0",
    "x > bool 3",
    "2 ^ 3 ^ 2",
    "-x",
    "max_over_time(rate(x[1m])[10m:1m])",
    "topk(3, x)",
    'count_values("v", x)',
    "x * on (pod) group_left (gpu_type) y",
    "x @ 1609746000",
    'label_replace(x, "a", "$1", "b", "(.*)")',
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    "time() - x",
    '{__name__="up", job="gpu"}',
    "up == 0",
]

INVALID = [
    "rate(x)",  # rate needs a range vector
    "sum(x[5m])",  # aggregation needs an instant vector
    "avg_over_tme(x[5m])",  # unknown function
    "x{a=\"b\"",  # unterminated matcher
    "sum by state (x)",  # label list needs parentheses
    "x +",  # missing operand
    "(x",  # missing parenthesis
    "1 and 2",  # set operator on scalars
    "x[5]",  # duration without unit
    "{}",  # empty selector
    "x offset",  # missing duration
    '{instance=~""}',  # only matchers that match the empty string
    "topk(x)",  # missing parameter
    "x y",  # two expressions
]


@pytest.mark.parametrize("expr", VALID)
def test_parser_accepts_valid_promql(expr):
    parse(expr)


@pytest.mark.parametrize("expr", INVALID)
def test_parser_rejects_invalid_promql(expr):
    with pytest.raises(PromQLError):
        parse(expr)


def test_parser_types():
    assert parse("x") == "v"
    assert parse("x[5m]") == "m"
    assert parse("1 + 2") == "s"
    assert parse("scalar(x)") == "s"


def test_substitute_replaces_every_form():
    expr = 'x{a=~"${a}", b=~"$b", c=~"[[c]]"}[$__rate_interval]'
    assert substitute(expr, {"a": "1", "b": "2", "c": "3"}) == 'x{a=~"1", b=~"2", c=~"3"}[1m]'
    with pytest.raises(KeyError):
        substitute("x{a=~\"$missing\"}", {})
