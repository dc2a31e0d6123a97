#!/usr/bin/env python3
"""Ingest load generator for `dozor server` (loopback only).

Posts realistic batches of normalized events to POST /api/v1/ingest over HTTPS with the
server's CA pinned, at a target rate or as fast as the server takes them, from several
connections. Each event gets a fresh UUIDv7 (time-ordered, as agents make them) so nothing
is a duplicate. Prints one JSON line.

usage: loadgen.py --url https://127.0.0.1:PORT --token T --ca ca.pem --events FILE.ndjson
                  [--total N] [--rate EPS] [--batch 1000] [--connections 4]
"""
import argparse, http.client, json, os, ssl, sys, threading, time, uuid
from urllib.parse import urlparse


def uuid7():
    """A UUIDv7 (time-ordered), as Dozor agents make them."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--events", required=True, help="NDJSON of normalized events (templates)")
    ap.add_argument("--total", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=0, help="events/s; 0 = as fast as possible")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    a = ap.parse_args()
    u = urlparse(a.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loadgen only targets loopback addresses")
    templates = [json.loads(l) for l in open(a.events) if l.strip()]
    if not templates:
        sys.exit("no template events")
    ctx = ssl.create_default_context(cafile=a.ca)
    batches = (a.total + a.batch - 1) // a.batch
    lock = threading.Lock()
    state = {"next": 0, "sent": 0, "retries_503": 0, "errors": 0, "accepted": 0}

    def take():
        with lock:
            if state["next"] >= batches:
                return None
            b = state["next"]
            state["next"] += 1
            return b

    # Bodies are built before the clock starts, so generating JSON in Python does not compete
    # with the server for this machine's CPU while it is being measured.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    bodies = []
    for b in range(batches):
        n = min(a.batch, a.total - b * a.batch)
        lines = []
        for i in range(n):
            t = templates[(b * a.batch + i) % len(templates)]
            e = dict(t)
            e["event"] = dict(t.get("event", {}))
            e["event"]["id"] = uuid7()
            e["event"].pop("ingested", None)
            e["event"].pop("agent_id_status", None)
            e["@timestamp"] = now
            lines.append(json.dumps(e, separators=(",", ":")))
        bodies.append((n, ("\n".join(lines) + "\n").encode()))
    start = time.monotonic()
    started_at = time.time()

    def worker():
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
        while (b := take()) is not None:
            n, body = bodies[b]
            if a.rate > 0:  # pace: batch b may start at b*batch/rate seconds
                delay = start + b * a.batch / a.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while True:
                try:
                    conn.request("POST", "/api/v1/ingest", body, {
                        "Authorization": f"Bearer {a.token}",
                        "Content-Type": "application/x-ndjson"})
                    r = conn.getresponse()
                    payload = r.read()
                except Exception:
                    state["errors"] += 1
                    conn.close()
                    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
                    time.sleep(0.2)
                    continue
                if r.status == 503:
                    with lock:
                        state["retries_503"] += 1
                    time.sleep(float(r.getheader("Retry-After", "1")))
                    continue
                if r.status != 202:
                    sys.exit(f"unexpected {r.status}: {payload[:300]!r}")
                rep = json.loads(payload)
                with lock:
                    state["sent"] += n
                    state["accepted"] += rep.get("accepted", 0)
                break

    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print(json.dumps({"started_at": started_at, "sent": state["sent"], "accepted": state["accepted"], "seconds": round(elapsed, 3),
                      "events_per_second": round(state["sent"] / elapsed), "retries_503": state["retries_503"],
                      "errors": state["errors"]}))


if __name__ == "__main__":
    main()
