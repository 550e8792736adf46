"""Network namespaces for tests over the wire: a home network behind a NAT router.

    root namespace  --veth--  router namespace (NAT, firewall)  --veth--  home namespace
    10.X.Y.1/29               10.X.Y.2/29  |  10.X.Y.9/29                 10.X.Y.10/29

The router masquerades the home network behind 10.X.Y.2, as a carrier-grade NAT would;
its firewall rules decide what the home may reach. Addresses exist only between these
namespaces (X and Y come from the process id, so runs side by side don't collide), and
everything is removed on close. Needs root, `ip` and `iptables`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


class NatHome:
    def __init__(self) -> None:
        if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("iptables")):
            pytest.fail("network namespaces need root, iproute2 and iptables "
                        "(scripts/bootstrap --dev installs iptables)")
        pid = os.getpid()
        self.tag = f"k{pid % 100000}"
        self.router, self.home = f"{self.tag}-nat", f"{self.tag}-home"
        net = f"10.{200 + pid % 50}.{(pid // 50) % 256}"
        self.public, self.router_up = f"{net}.1", f"{net}.2"
        self.router_down, self.home_address = f"{net}.9", f"{net}.10"
        self._up, self._down = f"{self.tag}u", f"{self.tag}d"
        used = _run("ip", "-4", "-o", "addr")
        if f" {net}." in used:
            pytest.fail(f"{net}.0/24 is in use on this machine")
        self._made = False

    def create(self) -> NatHome:
        self._made = True
        r, h = self.router, self.home
        _run("ip", "netns", "add", r)
        _run("ip", "netns", "add", h)
        _run("ip", "link", "add", self._up, "type", "veth", "peer", "name", f"{self._up}r")
        _run("ip", "link", "set", f"{self._up}r", "netns", r)
        _run("ip", "addr", "add", f"{self.public}/29", "dev", self._up)
        _run("ip", "link", "set", self._up, "up")
        _run("ip", "link", "add", self._down, "type", "veth", "peer", "name", f"{self._down}h")
        _run("ip", "link", "set", self._down, "netns", r)
        _run("ip", "link", "set", f"{self._down}h", "netns", h)
        for ns, dev, address in ((r, f"{self._up}r", self.router_up),
                                 (r, self._down, self.router_down),
                                 (h, f"{self._down}h", self.home_address)):
            _run("ip", "-n", ns, "addr", "add", f"{address}/29", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", h, "route", "add", "default", "via", self.router_down)
        _run("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.iptables("-t", "nat", "-A", "POSTROUTING", "-o", f"{self._up}r", "-j", "MASQUERADE")
        return self

    def iptables(self, *rule: str) -> str:
        return _run("ip", "netns", "exec", self.router, "iptables", *rule)

    def allow_udp_only_to(self, address: str, port: int) -> None:
        """The home may send UDP to `address:port` alone (TCP stays open, as on networks
        that allow only web traffic and one TURN server); what comes back from there is
        counted too."""
        down, up = self._down, f"{self._up}r"
        self.iptables("-A", "FORWARD", "-i", down, "-p", "udp", "-d", address, "--dport",
                      str(port), "-j", "ACCEPT")
        self.iptables("-A", "FORWARD", "-i", down, "-p", "udp", "-j", "DROP")
        self.iptables("-A", "FORWARD", "-i", up, "-p", "udp", "-s", address, "--sport",
                      str(port), "-j", "ACCEPT")

    def udp_counts(self) -> dict[str, int]:
        """UDP packets through the router's rules: `out` (home to the allowed address),
        `dropped` (home to anywhere else), `back` (from the allowed address to the home)."""
        names = {("ACCEPT", self._down): "out", ("DROP", self._down): "dropped",
                 ("ACCEPT", f"{self._up}r"): "back"}
        counts: dict[str, int] = {}
        for line in self.iptables("-L", "FORWARD", "-v", "-x", "-n").splitlines()[2:]:
            fields = line.split()
            if len(fields) > 5 and fields[3] in ("udp", "17"):
                name = names.get((fields[2], fields[5]))
                if name is not None:
                    counts[name] = counts.get(name, 0) + int(fields[0])
        return counts

    def wrapper(self, folder: Path, program: str) -> Path:
        """An executable that runs `program` inside the home namespace."""
        path = folder / f"{Path(program).name}-in-{self.home}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.home} {program} "$@"\n')
        path.chmod(0o755)
        return path

    def close(self) -> None:
        if not self._made:
            return
        for ns in (self.home, self.router):  # deleting a namespace removes its veths
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self._up], capture_output=True)



class NatServer:
    """A server behind a 1:1 NAT, as in a cloud behind a load balancer or Docker's port
    publishing:

        root namespace  --veth--  router namespace (1:1 NAT)  --veth--  server namespace
        10.X.Y.1/29               10.X.Y.2/29 = public  |  10.X.Y.9/29  10.X.Y.10/29 = internal

    Everything sent to the public address is forwarded to the internal one, and what the
    server sends leaves from the public one. The internal address is not routable from the
    root namespace. Needs root, `ip` and `iptables`.
    """

    def __init__(self) -> None:
        if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("iptables")):
            pytest.fail("network namespaces need root, iproute2 and iptables "
                        "(scripts/bootstrap --dev installs iptables)")
        pid = os.getpid()
        self.tag = f"s{pid % 100000}"
        self.router, self.server = f"{self.tag}-nat", f"{self.tag}-srv"
        net = f"10.{150 + pid % 50}.{(pid // 50) % 256}"
        self.outside, self.public = f"{net}.1", f"{net}.2"
        self.router_in, self.internal = f"{net}.9", f"{net}.10"
        self._up, self._down = f"{self.tag}u", f"{self.tag}d"
        if f" {net}." in _run("ip", "-4", "-o", "addr"):
            pytest.fail(f"{net}.0/24 is in use on this machine")
        self._made = False

    def create(self) -> NatServer:
        self._made = True
        r, s = self.router, self.server
        _run("ip", "netns", "add", r)
        _run("ip", "netns", "add", s)
        _run("ip", "link", "add", self._up, "type", "veth", "peer", "name", f"{self._up}r")
        _run("ip", "link", "set", f"{self._up}r", "netns", r)
        _run("ip", "addr", "add", f"{self.outside}/29", "dev", self._up)
        _run("ip", "link", "set", self._up, "up")
        _run("ip", "link", "add", self._down, "type", "veth", "peer", "name", f"{self._down}s")
        _run("ip", "link", "set", self._down, "netns", r)
        _run("ip", "link", "set", f"{self._down}s", "netns", s)
        for ns, dev, address in ((r, f"{self._up}r", self.public),
                                 (r, self._down, self.router_in),
                                 (s, f"{self._down}s", self.internal)):
            _run("ip", "-n", ns, "addr", "add", f"{address}/29", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", s, "route", "add", "default", "via", self.router_in)
        _run("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.iptables("-t", "nat", "-A", "PREROUTING", "-i", f"{self._up}r", "-d", self.public,
                      "-j", "DNAT", "--to-destination", self.internal)
        self.iptables("-t", "nat", "-A", "POSTROUTING", "-o", f"{self._up}r", "-s",
                      self.internal, "-j", "SNAT", "--to-source", self.public)
        return self

    def iptables(self, *rule: str) -> str:
        return _run("ip", "netns", "exec", self.router, "iptables", *rule)

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the server namespace."""
        return ["ip", "netns", "exec", self.server]

    def close(self) -> None:
        if not self._made:
            return
        for ns in (self.server, self.router):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self._up], capture_output=True)


class ShapedLink:
    """A viewer's own network namespace on a veth pair from the root namespace, its download
    shaped by `tc tbf` on the root side (this kernel may lack `netem`):

        root namespace 10.X.N.1/30  --veth (tbf on this end)--  viewer namespace 10.X.N.2/30

    `index` tells links of one run apart. Needs root, `ip` and `tc`."""

    def __init__(self, index: int) -> None:
        if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("tc")):
            raise RuntimeError("shaped links need root, iproute2 and tc")
        pid = os.getpid()
        self.tag = f"v{pid % 10000}x{index}"
        self.namespace = f"{self.tag}-ns"
        net = f"10.{100 + pid % 50}.{index * 4}"
        self.root_address, self.address = f"{net}.1", f"{net}.2"
        self._dev = f"{self.tag}r"
        if f" {self.root_address}/" in _run("ip", "-4", "-o", "addr"):
            raise RuntimeError(f"{self.root_address} is in use on this machine")
        self._made = False

    def create(self) -> ShapedLink:
        self._made = True
        ns, dev = self.namespace, self._dev
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", dev, "type", "veth", "peer", "name", f"{self.tag}v")
        _run("ip", "link", "set", f"{self.tag}v", "netns", ns)
        _run("ip", "addr", "add", f"{self.root_address}/30", "dev", dev)
        _run("ip", "link", "set", dev, "up")
        _run("ip", "-n", ns, "addr", "add", f"{self.address}/30", "dev", f"{self.tag}v")
        _run("ip", "-n", ns, "link", "set", f"{self.tag}v", "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "route", "add", "default", "via", self.root_address)
        return self

    def shape(self, kbit: int, burst_bytes: int = 16_000, latency_ms: int = 200) -> None:
        """What reaches the viewer is held to `kbit` (a bottleneck with a queue of
        `latency_ms`; beyond it packets are dropped, as on a congested access link)."""
        _run("tc", "qdisc", "replace", "dev", self._dev, "root", "tbf", "rate", f"{kbit}kbit",
             "burst", str(burst_bytes), "latency", f"{latency_ms}ms")

    def clear(self) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", self._dev, "root"], capture_output=True)

    def counts(self) -> tuple[int, int]:
        """What the shaping queue has sent (bytes) and dropped (packets) so far."""
        out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", self._dev],
                             capture_output=True, text=True).stdout
        found = re.search(r"Sent (\d+) bytes \d+ pkt \(dropped (\d+)", out)
        return (int(found[1]), int(found[2])) if found else (0, 0)

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the viewer's namespace."""
        return ["ip", "netns", "exec", self.namespace]

    def close(self) -> None:
        if not self._made:
            return
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self._dev], capture_output=True)
