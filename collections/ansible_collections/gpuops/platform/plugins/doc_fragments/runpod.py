# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by everything in gpuops.platform that talks to the RunPod REST API v2: the runpod_* modules
    # (runpod_argument_spec() in module_utils/_runpod_module.py) and the runpod inventory plugin.
    # This is the one text of these options: a plugin adds only env entries on top (a module cannot carry them), and
    # no module or plugin repeats an option's description (its own would replace this one).
    DOCUMENTATION = r"""
options:
  base_url:
    description:
      - Base URL of the RunPod REST API v2.
      - Point it at the local stand-in (for example V(http://127.0.0.1:8765/v2), started with C(python -m localcloud start))
        to run everything without RunPod. The same code talks to both.
      - A REST v1 URL (ending in C(/v1)) is refused with a message naming the v2 URL; RunPod retired v1 in November 2026.
      - If not set, the value of the E(RUNPOD_BASE_URL) environment variable is used, then the default.
    type: str
    default: https://api.runpod.io/v2
  api_key:
    description:
      - 'RunPod API key, sent as C(Authorization: Bearer KEY).'
      - The key is never written to logs, errors, results, host variables or the cache.
      - If not set, the value of the E(RUNPOD_API_KEY) environment variable is used, then the content of O(api_key_file).
    type: str
  api_key_file:
    description:
      - File that holds the RunPod API key, used when O(api_key) is not set.
      - Leading and trailing white space is ignored.
      - The local cloud writes its key to C(.gpuops/localcloud/api_key).
    type: path
  validate_certs:
    description:
      - Whether to check the TLS certificate of the API.
      - Only set to V(false) for a local stand-in with a self-signed certificate.
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds to wait for one answer of the API before giving up.
    type: int
    default: 30
  max_retries:
    description:
      - How many times one request is sent again when the API answers HTTP 429 (rate limited; any request) or
        HTTP 502, 503 or 504 (only C(GET) requests, which change nothing).
      - The wait before each retry is the API's C(Retry-After) (seconds or an HTTP date), else the reset time of the
        exhausted window of its C(RateLimit) header, else an exponential backoff with jitter.
    type: int
    default: 5
  max_retry_wait:
    description:
      - Seconds that the retries of one request may wait in all. A retry that would wait longer is not made; the
        error then says how long the API asked to wait.
    type: int
    default: 120
requirements:
  - A RunPod API key (or the local cloud's key file).
"""
