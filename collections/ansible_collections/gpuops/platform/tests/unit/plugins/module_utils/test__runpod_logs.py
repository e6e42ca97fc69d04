# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pod log client and the host key fingerprints of a start, on logs recorded from real start scripts."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    HttpAnswer,
    LogEvent,
    RunPodAPIError,
    RunPodClient,
    RunPodNotFound,
    parse_fingerprint_line,
    parse_log_events,
    start_host_keys,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "runpod_logs")


def _read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


SSE = _read("standin-two-starts.sse")
STARTS = json.loads(_read("standin-two-starts.json"))
OFFICIAL = _read("official-start-sh.log")
# The stand-in's fingerprints of each start, as its log printed them (see the fixture).
FIRST = [line.split()[1] for line in SSE.split("Pod Started")[1].split("Pod Started")[0].splitlines()
         if "SHA256:" in line]


def test_sse_events_parse_in_order():
    events = parse_log_events(SSE)
    assert len(events) == SSE.count("\ndata: ") + SSE.startswith("data: ")
    assert all(event.source == "container" and event.ts and event.id.startswith(event.ts + "/") for event in events)
    assert [event.line for event in events].count("Pod Started") == 2


def test_sse_framing_rules():
    text = (": comment\r\nid: a\r\ndata: {\"ts\": \"2026-01-01T00:00:00Z\", \"source\": \"container\",\r\n"
            "data:  \"line\": \"x\"}\r\n\r\ndata: not json\n\ndata: {\"line\": \"cut\"}")
    events = parse_log_events(text)
    assert events == [LogEvent(line="x", ts="2026-01-01T00:00:00Z", source="container", id="a"),
                      LogEvent(line="not json")]


def test_current_start_of_the_standins_recorded_log():
    events = parse_log_events(SSE)
    found = start_host_keys(events, STARTS["startedAt_second"])
    assert [fp.key_type for fp in found.fingerprints] == ["RSA", "ECDSA", "ED25519"]
    assert all(fp.fingerprint.startswith("SHA256:") and len(fp.fingerprint) == 50 for fp in found.fingerprints)
    # The second start's keys only: not those of the first start, which the log also holds.
    second_part = SSE.rsplit("Pod Started", 1)[1]
    assert all(fp.fingerprint in second_part for fp in found.fingerprints)
    assert not set(found.values) & set(FIRST)
    assert found.marker_ts >= STARTS["startedAt_second"]


def test_a_log_that_has_not_reached_the_current_start_gives_nothing():
    events = [event for event in parse_log_events(SSE) if event.ts < STARTS["startedAt_second"]]
    assert start_host_keys(events, STARTS["startedAt_first"]) is not None
    # A restart later than the log by more than the slack: the log's last start is an earlier one.
    assert start_host_keys(events, "2026-12-05T15:00:00Z") is None


def test_official_start_script_output():
    events = [LogEvent(line=line) for line in OFFICIAL.splitlines()]
    found = start_host_keys(events)
    assert [fp.key_type for fp in found.fingerprints] == ["RSA", "DSA", "ECDSA", "ED25519"]
    assert found.fingerprints[1].bits == 1024 and found.fingerprints[0].comment == "root@0f1e2d3c4b5a"
    # Each key is printed twice (after it is made, then under "SSH host keys:"): kept once.
    assert len(found.values) == len(set(found.values)) == 4


def test_no_marker_or_no_fingerprints():
    assert start_host_keys([LogEvent(line="256 SHA256:%s root@x (ED25519)" % ("A" * 43))]) is None
    found = start_host_keys([LogEvent(line="Pod Started"), LogEvent(line="hello")])
    assert found is not None and found.fingerprints == ()
    # A system line never counts as the container's.
    system = [LogEvent(line="Pod Started", source="system"), LogEvent(line="256 SHA256:%s r (ED25519)" % ("B" * 43))]
    assert start_host_keys(system) is None


@pytest.mark.parametrize("line", [
    "256 SHA256:%s root@x (ED25519) trailing" % ("A" * 43),
    "256 SHA256:%s root@x" % ("A" * 43),
    "256 MD5:aa:bb root@x (ED25519)",
    "SHA256:%s root@x (ED25519)" % ("A" * 43),
    "256 SHA256:%s root@x (ED25519)" % ("A" * 42),
])
def test_lines_that_are_not_fingerprints(line):
    assert parse_fingerprint_line(line) is None


class Streams:
    """A stream transport answering from a recording."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, method, url, headers, body, timeout, validate_certs):
        self.calls.append((method, url, headers))
        return self.answers.pop(0)


def test_pod_logs_request_and_answer():
    stream = Streams(HttpAnswer(200, {"Content-Type": "text/event-stream; charset=utf-8"}, SSE.encode()))
    client = RunPodClient("k", base_url="http://127.0.0.1:1/v2", stream_transport=stream)
    events = client.pod_logs(STARTS["pod_id"])
    assert len(events) == len(parse_log_events(SSE))
    method, url, headers = stream.calls[0]
    assert method == "GET"
    assert url == "http://127.0.0.1:1/v2/pods/%s/logs?source=container&tail=5000" % STARTS["pod_id"]
    assert headers["Accept"].startswith("text/event-stream") and headers["Authorization"] == "Bearer k"


def test_pod_logs_errors():
    problem = json.dumps({"title": "Not Found", "status": 404, "detail": "pod x not found"}).encode()
    client = RunPodClient("k", base_url="http://127.0.0.1:1/v2", sleep=lambda s: None, stream_transport=Streams(
        HttpAnswer(404, {"Content-Type": "application/problem+json"}, problem)))
    with pytest.raises(RunPodNotFound, match="pod x not found"):
        client.pod_logs("x")
    client = RunPodClient("k", base_url="http://127.0.0.1:1/v2", sleep=lambda s: None, stream_transport=Streams(
        HttpAnswer(429, {"Retry-After": "0"}, b""), HttpAnswer(200, {"Content-Type": "text/event-stream"}, b"")))
    assert client.pod_logs("x") == []
    client = RunPodClient("k", base_url="http://127.0.0.1:1/v2", stream_transport=Streams(
        HttpAnswer(200, {"Content-Type": "application/json"}, b"{}")))
    with pytest.raises(RunPodAPIError, match="not text/event-stream"):
        client.pod_logs("x")
    with pytest.raises(RunPodAPIError, match="unknown log source"):
        client.pod_logs("x", source="all")
    with pytest.raises(RunPodAPIError, match="out of range"):
        client.pod_logs("x", tail=5001)
