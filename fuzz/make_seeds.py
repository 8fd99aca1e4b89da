#!/usr/bin/env python3
"""Regenerate fuzz/seeds/ from the engine captures in tests/fixtures/*.jsonl.

Run by hand when the captures change (the seeds are committed, so the fuzz
script needs no Python): python3 fuzz/make_seeds.py
"""
import hashlib
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"
# protocol::Call::ALL order: the decode target's first byte picks the call
CALLS = [
    "/Plugin.Activate", "/NetworkDriver.GetCapabilities", "/NetworkDriver.GwAllocCheck",
    "/NetworkDriver.AllocateNetwork", "/NetworkDriver.FreeNetwork", "/NetworkDriver.CreateNetwork",
    "/NetworkDriver.DeleteNetwork", "/NetworkDriver.CreateEndpoint", "/NetworkDriver.EndpointOperInfo",
    "/NetworkDriver.DeleteEndpoint", "/NetworkDriver.Join", "/NetworkDriver.Leave",
    "/NetworkDriver.DiscoverNew", "/NetworkDriver.DiscoverDelete",
    "/NetworkDriver.ProgramExternalConnectivity", "/NetworkDriver.RevokeExternalConnectivity",
    "/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces", "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool", "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress",
]


def put(target, data):
    d = HERE / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main():
    for f in sorted(FIXTURES.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            path, raw = rec["path"], rec["raw"]
            if path not in CALLS:
                continue
            put("decode", bytes([CALLS.index(path)]) + raw.encode())
            if raw.strip():
                body = json.loads(raw)
                opts = body.get("Options") if isinstance(body, dict) else None
                if path.endswith(("CreateNetwork", "GwAllocCheck")) and isinstance(opts, dict):
                    put("network_options", json.dumps(opts).encode())
                    generic = opts.get("com.docker.network.generic")
                    if isinstance(generic, dict):
                        put("network_options", json.dumps(generic).encode())
    # hand-written edge cases
    for g in [
        {"parent": "hp0", "kind": "macvlan", "macvlan_mode": "passthru"},
        {"parent": "eth0.4094", "ipvlan_mode": "L3S", "ipvlan_flag": "vepa"},
        {"parent": "auto", "com.docker.network.driver.mtu": "1500"},
        {"parent": "lo"}, {"parent": "a/b"}, {"parent": "averyveryverylongname"},
        {"kind": "VXLAN"}, {"foo": "bar"}, {"parent": " "}, {"com.docker.network.driver.mtu": 9000},
    ]:
        put("network_options", json.dumps(g).encode())
    for s in ["172.30.0.0/16:24,fdc9:b4a1:7e2d::/48:64", "10.0.0.0/8:32", "::/0:128", "1.2.3.4/33:1",
              "RequestAddressType=com.docker.network.gateway\ncom.docker.network.ipam.serial=true"]:
        put("ipam_config", s.encode())


main()
