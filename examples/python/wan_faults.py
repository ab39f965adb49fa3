#!/usr/bin/env python3
"""Builds a two-site network through the API of a running `netloom emulate --serve`, injects faults
on its WAN, and reads what the traffic saw. Network time is stepped while paused, so every figure
comes from network time, not from how fast this machine runs.

    ./netloom emulate --serve 127.0.0.1:8080 &
    python3 examples/python/wan_faults.py http://127.0.0.1:8080/
"""
import sys

from netloom_api import Netloom, NetloomError

api = Netloom(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/")

# 1. Build: two LANs, two routers, a 20 Mbit/s WAN; a bulk transfer and a ping across it.
topology = {
    "name": "wan-faults",
    "duration": "600s",
    "nodes": {"h1": "host", "s1": "switch", "r1": "router", "r2": "router", "h2": "host"},
    "links": [
        {"a": "h1", "b": "s1"},
        {"a": "s1", "b": "r1"},
        {"name": "wan", "a": "r1", "b": "r2", "delay": "10ms", "rate": "20mbit", "queue": 100},
        {"a": "r2", "b": "h2"},
    ],
    "apps": [
        {"type": "bulk", "on": "h1", "to": "h2", "duration": "590s", "start": "100ms"},
        {"type": "ping", "on": "h1", "to": "h2", "interval": "100ms"},
    ],
}
api.load(topology)
api.pause()


def wan_goodput(seconds):
    """Steps `seconds` of network time and returns the WAN's delivered rate from h1's side, in Mbit/s."""
    before = api.link("wan")["directions"][0]["delivered_bytes"]
    t0 = api.state()["virtual_seconds"]
    api.step(duration=f"{seconds}s")
    after = api.link("wan")["directions"][0]["delivered_bytes"]
    t1 = api.state()["virtual_seconds"]
    return (after - before) * 8 / (t1 - t0) / 1e6


def ping():
    return next(a for a in api.apps() if a["kind"] == "ping")


results = {}
api.step(duration="2s")                      # connection set up, slow start over
results["clean_mbps"] = wan_goodput(3)

# 2. Faults: loss on the WAN, then the WAN down, then a crashed server host.
api.set_link("wan", loss="3%")
results["lossy_mbps"] = wan_goodput(3)
api.set_link("wan", loss="0%")

sent_before = ping()["sent"]
received_before = ping()["received"]
api.link_down("wan")
results["down_mbps"] = wan_goodput(1)
api.link_up("wan")
results["pings_lost_while_down"] = (ping()["sent"] - sent_before) - (ping()["received"] - received_before)

api.crash("h2")
api.step(duration="500ms")
drops = api.link("r2-h2")["directions"][0]["drops"]
results["frames_dropped_at_crashed_host"] = drops.get("nodedown", 0)
api.restart("h2")

# 3. A wrong request gets a message, not a crash.
try:
    api.set_link("wan", delay="soon")
    results["bad_request"] = "accepted?!"
except NetloomError as e:
    results["bad_request"] = f"{e.status} {e.message}"

for k, v in results.items():
    print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")

ok = (results["clean_mbps"] > 10 and results["lossy_mbps"] < results["clean_mbps"]
      and results["down_mbps"] == 0 and results["pings_lost_while_down"] >= 5
      and results["frames_dropped_at_crashed_host"] > 0 and results["bad_request"].startswith("400"))
print("expected behaviour: " + ("yes" if ok else "NO"))
sys.exit(0 if ok else 1)
