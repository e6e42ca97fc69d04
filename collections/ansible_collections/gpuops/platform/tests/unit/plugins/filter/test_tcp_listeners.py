# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""tcp_listeners on /proc/net/tcp and /proc/net/tcp6 as a stand-in pod printed them (nginx and sshd running)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gpuops.platform.plugins.filter.tcp_listeners import FilterModule, tcp_listeners

# Recorded with `cat /proc/net/tcp /proc/net/tcp6` in gpuops/runpod-pytorch-standin (RunPod's nginx proxy
# started by /start.sh, sshd on 0.0.0.0 and ::), plus an exporter on 127.0.0.1:9400, slurmd on 172.18.0.2:6818,
# an established SSH connection and a socket on ::1 and ::ffff:127.0.0.1 (lines added from the same kernel's format).
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738726 1 00000000fac7a874 100 0 0 10 0
   1: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738727 1 00000000681f5297 100 0 0 10 0
   2: 00000000:1EB5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738725 1 00000000ab6d8e78 100 0 0 10 0
   3: 00000000:1C66 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738728 1 00000000265b00b4 100 0 0 10 0
   4: 00000000:0BB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738724 1 00000000413c9fc4 100 0 0 10 0
   5: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738520 1 000000007a61fe88 100 0 0 10 0
   6: 00000000:2383 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738723 1 0000000078c9fe7e 100 0 0 10 0
   7: 0100007F:24B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738800 1 0000000078c9fe7f 100 0 0 10 0
   8: 020012AC:1AA2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10738801 1 0000000078c9fe80 100 0 0 10 0
   9: 020012AC:0016 010012AC:D2F0 01 00000000:00000000 02:000A8A1C 00000000     0        0 10738900 2 0000000078c9fe81 20 4 30 10 -1
"""
TCP6 = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 10738522 1 0000000005369646 100 0 0 10 0\n"
    "   1: 00000000000000000000000001000000:1A85 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 10738523 1 0000000005369647 100 0 0 10 0\n"
    "   2: 0000000000000000FFFF00000100007F:1A86 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 10738524 1 0000000005369648 100 0 0 10 0\n"
)


def test_the_filter_is_exported_by_name():
    assert FilterModule().filters() == {"tcp_listeners": tcp_listeners}


def test_listening_sockets_of_both_tables():
    assert tcp_listeners([TCP, TCP6]) == [
        {"address": "0.0.0.0", "port": 22, "loopback": False},
        {"address": "::", "port": 22, "loopback": False},
        {"address": "0.0.0.0", "port": 3001, "loopback": False},
        {"address": "::1", "port": 6789, "loopback": True},
        {"address": "::ffff:127.0.0.1", "port": 6790, "loopback": True},
        {"address": "172.18.0.2", "port": 6818, "loopback": False},
        {"address": "0.0.0.0", "port": 7270, "loopback": False},
        {"address": "0.0.0.0", "port": 7861, "loopback": False},
        {"address": "0.0.0.0", "port": 8001, "loopback": False},
        {"address": "0.0.0.0", "port": 8081, "loopback": False},
        {"address": "0.0.0.0", "port": 9091, "loopback": False},
        {"address": "127.0.0.1", "port": 9400, "loopback": True},
    ]


def test_an_established_connection_is_not_a_listener():
    ports = {(item["address"], item["port"]) for item in tcp_listeners(TCP)}
    assert ("172.18.0.2", 22) not in ports


def test_one_text_the_concatenated_tables_and_duplicates():
    header, first = TCP.splitlines()[:2]
    assert tcp_listeners("\n".join([header, first, first])) == [{"address": "0.0.0.0", "port": 8081, "loopback": False}]
    assert tcp_listeners(TCP + TCP6) == tcp_listeners([TCP, TCP6])
    assert tcp_listeners("") == []


def test_what_the_design_allows_is_what_is_left():
    exposed = [item for item in tcp_listeners([TCP, TCP6]) if not item["loopback"] and item["port"] not in (22, 6818)]
    assert sorted({item["port"] for item in exposed}) == [3001, 7270, 7861, 8001, 8081, 9091]


@pytest.mark.parametrize("bad", [
    "   0: 00000000:1F91",
    "   0: 0000000Z:1F91 00000000:0000 0A",
    "   0: 000000:1F91 00000000:0000 0A",
    "   0: 00000000-1F91 00000000:0000 0A",
])
def test_text_that_is_not_such_a_table_is_refused_naming_the_line(bad):
    with pytest.raises(AnsibleFilterError, match="line 2 is not a line of /proc/net/tcp"):
        tcp_listeners("  sl  local_address\n" + bad)


@pytest.mark.parametrize("bad", [None, 5, [TCP, 7], {"a": TCP}])
def test_input_that_is_not_text_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="expects the text of /proc/net/tcp"):
        tcp_listeners(bad)
