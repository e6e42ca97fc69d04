"""PromQL checks for the observability tests, on promql-parser (not a parser of our own).

The dashboards and alert rules of gpuops.platform.observability are checked
here without Prometheus: promql-parser (the Python binding of the Rust
promql-parser crate, which follows Prometheus' grammar and type rules, v2.45)
parses every expression and type-checks it as Prometheus does. Prometheus
itself checks them too: promtool checks the deployed configuration and rules
and runs the rule tests (tests/integration/test_stack.py,
tests/integration/test_alert_rules.py), and the integration tests run every
dashboard query on a live Prometheus.

Grafana variables must be substituted before parsing (see `substitute`).
"""

from __future__ import annotations

import re

import promql_parser
import pytest

#: Functions that take exactly one argument of one type, so that the parser's own type check tells an expression's
#: type (promql-parser keeps the type of a parsed expression to itself).
_TYPE_PROBES = {"vector": "absent", "scalar": "vector", "matrix": "count_over_time"}


def value_type(expr: str) -> str:
    """The type Prometheus gives `expr`: vector, scalar, matrix or string; ValueError (the parser's message) if it is
    not valid PromQL."""
    promql_parser.parse(expr)
    for kind, function in _TYPE_PROBES.items():
        try:
            promql_parser.parse(f"{function}(\n{expr}\n)")  # newlines: a trailing comment cannot eat the ')'
        except ValueError:
            continue
        return kind
    return "string"


def metric_names(expr: str) -> set[str]:
    """The metric names that `expr` selects (its selectors' names, or their `__name__="..."` matchers)."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            equal = promql_parser.MatchOp.Equal
            names.update([node.name] if node.name else [
                m.value for m in node.matchers.matchers if m.name == "__name__" and m.op == equal])

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


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


# --- what the observability tests rely on -------------------------------------------


@pytest.mark.parametrize(("expr", "kind"), [
    ('up{job="gpu"} == 0', "vector"),
    ("avg_over_time(x[30m]) < 5 and x offset 30m", "vector"),
    ('count(ALERTS{alertstate="firing"}) or vector(0)', "vector"),
    ("sum by (day) (gpuops_slurm_spend_usd)", "vector"),
    ("x[5m]", "matrix"),
    ("max_over_time(rate(x[1m])[10m:1m])", "vector"),
    ("rate(x[1m])[10m:1m]", "matrix"),
    ("1 + 2", "scalar"),
    ("scalar(x)", "scalar"),
    ("1 > bool 2", "scalar"),
    ('"text"', "string"),
    ("x # a comment", "vector"),
])
def test_value_type_is_prometheus_type(expr: str, kind: str) -> None:
    assert value_type(expr) == kind


@pytest.mark.parametrize(("expr", "message"), [
    ("rate(x)", "expected type matrix in call to function 'rate', got vector"),
    ("sum(x[5m])", "expected type vector in aggregation expression, got matrix"),
    ("avg_over_tme(x[5m])", "unknown function with name 'avg_over_tme'"),
    ("1 and 2", "set operator 'and' not allowed in binary scalar expression"),
    ('{instance=~""}', "vector selector must contain at least one non-empty matcher"),
    ('x{a="b"', "unexpected end of input inside braces"),
    ("sum by state (x)", "invalid promql query"),
])
def test_invalid_promql_is_refused_with_the_parsers_reason(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        value_type(expr)


def test_metric_names_are_the_selected_metrics() -> None:
    expr = 'sum(rate(a{x="b_total"}[5m])) / on (pod) group_left b + {__name__="up", job="gpu"} > bool c offset 1m'
    assert metric_names(expr) == {"a", "b", "up", "c"}
    assert metric_names('{__name__=~"DCGM_.*"}') == set()  # a pattern names no metric


def test_substitute_replaces_every_form():
    expr = 'x{a=~"${a}", b=~"$b", c=~"[[c]]"}[$__rate_interval]'
    assert substitute(expr, {"a": "1", "b": "2", "c": "3"}) == 'x{a=~"1", b=~"2", c=~"3"}[1m]'
    with pytest.raises(KeyError):
        substitute("x{a=~\"$missing\"}", {})
