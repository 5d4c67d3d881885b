"""The two-host harness: two network namespaces joined by a veth pair (`hosts`) and a
throwaway PostgreSQL cluster inside the first, listening on its veth address (`cluster`).
Needs root and `ip netns`; when either is missing a test fails, it never skips."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from .pgcluster import Cluster, Hosts, run


def _ip(*args: str) -> None:
    run(["ip", *args])


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        pytest.fail("the multi-host test needs root to create network namespaces")
    tag = secrets.token_hex(3)
    subnet = int(tag[:2], 16) % 250 + 1
    made = Hosts(f"smA-{tag}", f"smB-{tag}", f"10.200.{subnet}.1", f"10.200.{subnet}.2")
    created: list[str] = []
    try:
        for ns in (made.a, made.b):
            try:
                _ip("netns", "add", ns)
            except AssertionError as exc:
                pytest.fail(f"cannot create network namespaces here: {exc}")
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        veth_a, veth_b = f"va{tag}", f"vb{tag}"
        _ip(
            "-n",
            made.a,
            "link",
            "add",
            veth_a,
            "type",
            "veth",
            "peer",
            "name",
            veth_b,
            "netns",
            made.b,
        )
        _ip("-n", made.a, "addr", "add", f"{made.addr_a}/24", "dev", veth_a)
        _ip("-n", made.b, "addr", "add", f"{made.addr_b}/24", "dev", veth_b)
        _ip("-n", made.a, "link", "set", veth_a, "up")
        _ip("-n", made.b, "link", "set", veth_b, "up")
        yield made
    finally:
        for ns in created:  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def cluster(hosts: Hosts) -> Iterator[Cluster]:
    # Crash durability is the restart test's subject; here commits need not wait for the disk.
    made = Cluster(listen=hosts.addr_a, port=5432, netns=hosts.a, durable=False)
    try:
        made.start()
        yield made
    finally:
        made.remove()
