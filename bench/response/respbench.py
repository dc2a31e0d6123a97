#!/usr/bin/env python3
"""Response benchmarks (issue 13) against a running `dozor server` (loopback only; Python 3
stdlib). Driven by bench/response/run.sh, which starts the server, writes the playbook and the
rule, and enrolls the agents (bench/soak/agents.py enroll).

  respbench.py notify --url URL --ca CA --token ADMIN --hook-port P --rule RULE_ID
                      [--rate 5000] [--duration 60] [--match-every 500] [--batch 500]
      Runs a webhook receiver on 127.0.0.1:P (the `webhook_url` of notify-operator) that
      timestamps every arrival, and ingests Linux process events at --rate events/s for
      --duration s (NDJSON batches prepared before the clock starts, paced, two connections).
      Every --match-every-th event runs the benchmark's marker executable, which the rule
      (level high) matches; each carries its own `agent.id`, so each match is a new alert
      (alerts aggregate per rule and agent) and starts notify-operator. Latency of an alert =
      arrival of its webhook (wall clock, ms) - the alert's `created_at` (set by the store in
      the transaction that commits it, same clock). Prints one JSON line.

  respbench.py commands --url URL --ca CA --token ADMIN --agents-dir DIR
                        [--commands 300] [--rate 5] [--wait-secs 25]
      Every agent of DIR/agents.json (enrolled by bench/soak/agents.py) gets a thread with its
      own mutual-TLS connection: one heartbeat, then the agent's long poll
      (GET /api/v1/agents/commands/next?wait_secs=N) again and again; a command is "executed"
      when it arrives (timestamped) and its result is reported at once
      (POST /api/v1/agents/commands/{id}/result, done). Once every agent has a poll open, the
      driver issues --commands `release_host` actions (not destructive: no approval) to random
      agents at --rate per second (POST /api/v1/agents/{id}/actions). Latency = arrival at the
      agent - the moment the driver sent the request; also the server's own created_at ->
      finished_at of each command. Prints one JSON line.
"""
import argparse, http.client, http.server, json, os, random, ssl, sys, threading, time, uuid
from urllib.parse import urlparse

MARKER = "/opt/bench/dozor-response-marker"
OTHER = [
    ("/usr/bin/ls", "ls -la /var/log"),
    ("/usr/bin/bash", "bash -c true"),
    ("/usr/sbin/sshd", "sshd: alice [priv]"),
    ("/usr/bin/python3", "python3 /srv/app/worker.py"),
    ("/usr/bin/curl", "curl -s https://example.org/health"),
]


def uuid7():
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def loopback_only(url):
    u = urlparse(url)
    if u.scheme != "https" or u.hostname not in ("127.0.0.1", "::1"):
        sys.exit(f"respbench.py only talks to https://127.0.0.1 (got {url})")
    return u


def quantiles(values):
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p):  # nearest rank
        return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]

    return {"n": len(v), "p50_ms": round(q(0.50), 1), "p95_ms": round(q(0.95), 1), "p99_ms": round(q(0.99), 1),
            "max_ms": round(v[-1], 1)}


def api_get(u, ctx, token, path):
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
    return json.loads(body)


# ------------------------------------------------------------------------------ notify

def cmd_notify(a):
    u = loopback_only(a.url)
    ctx = ssl.create_default_context(cafile=a.ca)
    hits = []
    lock = threading.Lock()

    class Hook(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            at = time.time() * 1000
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            with lock:
                hits.append((at, self.path, body, self.headers.get("X-Dozor-Signature")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", a.hook_port), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()

    total = int(a.rate * a.duration)
    batches = (total + a.batch - 1) // a.batch
    rng = random.Random(13)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    bodies, matching = [], 0
    for b in range(batches):
        lines = []
        for i in range(min(a.batch, total - b * a.batch)):
            n = b * a.batch + i
            match = n % a.match_every == 0
            exe, cmd = (MARKER, f"{MARKER} --beacon {n}") if match else rng.choice(OTHER)
            doc = {
                "@timestamp": now,
                "event": {"id": uuid7(), "kind": "event", "category": ["process"], "type": ["start"],
                          "module": "bench"},
                "host": {"name": f"bench-host-{n % 50:02d}", "os": {"type": "linux"}},
                "process": {"executable": exe, "name": exe.rsplit("/", 1)[-1], "command_line": cmd,
                            "pid": 1000 + n % 60000},
            }
            if match:
                matching += 1
                # One alert per match: alerts aggregate per rule and agent.
                doc["agent"] = {"id": f"bench-agent-{n}"}
            lines.append(json.dumps(doc, separators=(",", ":")))
        bodies.append((len(lines), ("\n".join(lines) + "\n").encode()))

    state = {"next": 0, "sent": 0, "retries_503": 0, "errors": 0}
    slock = threading.Lock()
    start = time.monotonic()
    started_at = time.time()

    def worker():
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
        while True:
            with slock:
                b = state["next"]
                if b >= len(bodies):
                    return
                state["next"] += 1
            n, body = bodies[b]
            delay = start + b * a.batch / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                try:
                    conn.request("POST", "/api/v1/ingest", body, {
                        "Authorization": f"Bearer {a.token}", "Content-Type": "application/x-ndjson"})
                    r = conn.getresponse()
                    payload = r.read()
                except (OSError, http.client.HTTPException):
                    with slock:
                        state["errors"] += 1
                    conn.close()
                    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
                    time.sleep(0.2)
                    continue
                if r.status == 503:
                    with slock:
                        state["retries_503"] += 1
                    time.sleep(float(r.getheader("Retry-After", "1")))
                    continue
                if r.status != 202:
                    sys.exit(f"ingest: unexpected {r.status}: {payload[:300]!r}")
                with slock:
                    state["sent"] += n
                break

    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load_seconds = time.monotonic() - start

    # Wait for the last notifications (at most --drain seconds without a new one).
    last, seen = time.monotonic(), -1
    while True:
        with lock:
            n = len(hits)
        if n >= matching:
            break
        if n != seen:
            seen, last = n, time.monotonic()
        if time.monotonic() - last > a.drain:
            break
        time.sleep(0.5)

    created = {}
    cursor = None
    while True:
        path = f"/api/v1/alerts?rule={a.rule}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = api_get(u, ctx, a.token, path)
        for al in page["alerts"]:
            created[al["id"]] = al["created_at"]
        cursor = page.get("next_cursor")
        if not cursor:
            break

    latencies, unsigned, unknown, per_alert = [], 0, 0, {}
    with lock:
        got = list(hits)
    for at, path, body, sig in got:
        if not sig:
            unsigned += 1
        try:
            alert_id = int(json.loads(body)["alert_id"])
        except (ValueError, KeyError, TypeError):
            unknown += 1
            continue
        if alert_id not in created:
            unknown += 1
            continue
        per_alert[alert_id] = per_alert.get(alert_id, 0) + 1
        if per_alert[alert_id] == 1:
            latencies.append((at, at - created[alert_id]))
    # Notifications while the load ran only (the bar is "at 5,000 events/s").
    load_end_ms = (started_at + load_seconds) * 1000
    during = [lat for at, lat in latencies if at <= load_end_ms]
    latencies = [lat for _, lat in latencies]
    out = {
        "events_sent": state["sent"], "load_seconds": round(load_seconds, 2),
        "events_per_second": round(state["sent"] / load_seconds), "retries_503": state["retries_503"],
        "ingest_errors": state["errors"], "matching_events": matching, "alerts": len(created),
        "notifications": len(got), "alerts_notified": len(per_alert), "duplicate_notifications": len(got) - len(per_alert) - unknown,
        "unsigned": unsigned, "unknown": unknown,
        "alert_to_notification": quantiles(latencies),
        "alert_to_notification_during_load": quantiles(during),
    }
    hook.shutdown()
    print(json.dumps(out))


# ------------------------------------------------------------------------------ commands

def facts(hostname):
    return {"hostname": hostname, "os_type": "linux", "os_name": "Debian GNU/Linux 12 (response bench)",
            "os_version": "12", "arch": "x86_64", "agent_version": "0.0.0-bench", "ips": ["127.0.0.1"]}


class SimAgent(threading.Thread):
    def __init__(self, a, u, info, received, stop):
        super().__init__(daemon=True)
        self.a, self.u, self.info, self.received, self.stop = a, u, info, received, stop
        self.ctx = ssl.create_default_context(cafile=a.ca)
        self.ctx.load_cert_chain(info["cert"], info["key"])
        self.conn = None
        self.polling = threading.Event()
        self.errors = []

    def request(self, method, path, body=None):
        for attempt in range(5):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection(self.u.hostname, self.u.port, context=self.ctx,
                                                            timeout=self.a.wait_secs + 30)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body, headers)
                if method == "GET":
                    self.polling.set()
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException) as e:
                self.conn = None
                if self.stop.is_set():
                    return None, b""
                self.errors.append(repr(e))
                time.sleep(0.2 * (attempt + 1))
        return None, b""

    def run(self):
        hb = json.dumps({"facts": facts(self.info["hostname"]), "health": [],
                         "resources": {"cpu_percent": 0.5, "rss_bytes": 30 << 20},
                         "spool": {"queued_records": 0, "queued_bytes": 0}}).encode()
        status, body = self.request("POST", "/api/v1/agents/heartbeat", hb)
        if status != 200:
            self.errors.append(f"heartbeat {status} {body[:200]!r}")
        next_hb = time.monotonic() + 30
        while not self.stop.is_set():
            status, body = self.request("GET", f"/api/v1/agents/commands/next?wait_secs={self.a.wait_secs}")
            if status != 200:
                if not self.stop.is_set():
                    self.errors.append(f"poll {status} {body[:200]!r}")
                    time.sleep(1)
                continue
            at = time.time()
            for c in json.loads(body).get("commands", []):
                self.received[c["id"]] = at
                result = json.dumps({"status": "done", "result": {"released": False, "simulated": True}}).encode()
                s, b = self.request("POST", f"/api/v1/agents/commands/{c['id']}/result", result)
                if s != 200:
                    self.errors.append(f"result {s} {b[:200]!r}")
            if time.monotonic() >= next_hb:
                self.request("POST", "/api/v1/agents/heartbeat", hb)
                next_hb = time.monotonic() + 30


def cmd_commands(a):
    u = loopback_only(a.url)
    infos = json.load(open(os.path.join(a.agents_dir, "agents.json")))
    received, stop = {}, threading.Event()
    agents = [SimAgent(a, u, info, received, stop) for info in infos]
    for ag in agents:
        ag.start()
    deadline = time.monotonic() + 120
    for ag in agents:
        if not ag.polling.wait(max(0.0, deadline - time.monotonic())):
            sys.exit(f"agent {ag.info['hostname']} never opened its long poll: {ag.errors[-3:]}")
    time.sleep(2)  # every poll parked on the server

    ctx = ssl.create_default_context(cafile=a.ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
    rng = random.Random(7)
    issued = {}
    start = time.monotonic()
    for i in range(a.commands):
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        target = rng.choice(infos)["agent_id"]
        body = json.dumps({"kind": "release_host", "args": {"reason": "response bench"},
                           "reason": "response bench"}).encode()
        t0 = time.time()
        conn.request("POST", f"/api/v1/agents/{target}/actions", body, {
            "Authorization": f"Bearer {a.token}", "Content-Type": "application/json"})
        r = conn.getresponse()
        payload = r.read()
        if r.status != 202:
            sys.exit(f"action: {r.status} {payload[:300]!r}")
        answer = json.loads(payload)
        if not answer.get("command"):
            sys.exit(f"release_host was not queued at once: {answer}")
        issued[answer["command"]["id"]] = t0
    wait_until = time.monotonic() + 30
    while time.monotonic() < wait_until and not all(c in received for c in issued):
        time.sleep(0.2)
    time.sleep(1)  # the last results reach the server
    lat = [(received[c] - t0) * 1000 for c, t0 in issued.items() if c in received]
    server = []
    for cid in issued:
        c = api_get(u, ctx, a.token, f"/api/v1/commands/{cid}")
        if c.get("finished_at") is not None:
            server.append(c["finished_at"] - c["created_at"])
    stop.set()
    errors = [e for ag in agents for e in ag.errors]
    print(json.dumps({
        "agents": len(agents), "commands": len(issued), "rate_per_second": a.rate,
        "received": sum(1 for c in issued if c in received), "results_recorded": len(server),
        "issued_to_executed": quantiles(lat),
        "server_created_to_result": quantiles(server),
        "agent_errors": len(errors), "agent_error_samples": errors[:3],
    }))
    os._exit(0)  # the agents' threads are blocked in their long polls


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("notify")
    n.add_argument("--url", required=True)
    n.add_argument("--ca", required=True)
    n.add_argument("--token", required=True)
    n.add_argument("--hook-port", type=int, required=True)
    n.add_argument("--rule", required=True)
    n.add_argument("--rate", type=float, default=5000)
    n.add_argument("--duration", type=float, default=60)
    n.add_argument("--match-every", type=int, default=500)
    n.add_argument("--batch", type=int, default=500)
    n.add_argument("--connections", type=int, default=2)
    n.add_argument("--drain", type=float, default=20)
    c = sub.add_parser("commands")
    c.add_argument("--url", required=True)
    c.add_argument("--ca", required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--agents-dir", required=True)
    c.add_argument("--commands", type=int, default=300)
    c.add_argument("--rate", type=float, default=5)
    c.add_argument("--wait-secs", type=int, default=25)
    a = ap.parse_args()
    cmd_notify(a) if a.cmd == "notify" else cmd_commands(a)


if __name__ == "__main__":
    main()
