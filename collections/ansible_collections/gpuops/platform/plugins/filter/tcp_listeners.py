# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The listening TCP sockets in the text of /proc/net/tcp and /proc/net/tcp6 (docs: tcp_listeners.yml)."""

from __future__ import annotations

import ipaddress
import socket
import struct

from ansible.errors import AnsibleFilterError

# The kernel's TCP_LISTEN state, as /proc/net/tcp* print it (column `st`).
_LISTEN = "0A"


def _address(hex_address):
    """'0100007F' -> '127.0.0.1'; 32 hex digits -> an IPv6 address.

    The kernel prints each 32-bit word of the address as it sits in memory read
    as a host-order integer: little-endian on the pods' x86-64 and arm64.
    """
    if len(hex_address) not in (8, 32):
        raise ValueError("an address of %d hex digits" % len(hex_address))
    raw = b"".join(struct.pack("<I", int(hex_address[i:i + 8], 16)) for i in range(0, len(hex_address), 8))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _is_loopback(address):
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def tcp_listeners(texts):
    """[text of /proc/net/tcp, text of /proc/net/tcp6, ...] (or one text) -> the listening sockets.

    Each: {'address': '0.0.0.0', 'port': 22, 'loopback': False}, sorted, without duplicates.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
        raise AnsibleFilterError("tcp_listeners expects the text of /proc/net/tcp and /proc/net/tcp6 (a string or "
                                 "a list of strings), got %s" % type(texts).__name__)
    found = set()
    for text in texts:
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields or fields[0] == "sl":
                continue
            try:
                local, state = fields[1], fields[3]
                hex_address, hex_port = local.split(":")
                if state.upper() != _LISTEN:
                    continue
                address, port = _address(hex_address), int(hex_port, 16)
            except (IndexError, ValueError) as error:
                raise AnsibleFilterError("line %d is not a line of /proc/net/tcp or /proc/net/tcp6 (%s): %r"
                                         % (number, error, line[:200]))
            found.add((address, port))
    return [{"address": address, "port": port, "loopback": _is_loopback(address)}
            for address, port in sorted(found, key=lambda item: (item[1], ipaddress.ip_address(item[0]).version,
                                                                 item[0]))]


class FilterModule:
    """TCP listener filters."""

    def filters(self):
        return {"tcp_listeners": tcp_listeners}
