#!/usr/bin/env python3
"""Simulated Dozor agents for the soak run (loopback only, Python 3 stdlib + the openssl CLI).

Two steps, both driven by bench/soak/run.sh:

  agents.py enroll --url URL --ca CA --token dze_... --agents N --out DIR
      Each agent makes a P-256 key and CSR with openssl and enrolls through
      POST /api/v1/agents/enroll, as `dozor-agent enroll` does. Writes DIR/agents.json and
      DIR/agent-NNN.{key,crt}.pem.

  agents.py run --url URL --ca CA --duration SECS --out DIR [--batch 50] [--interval 1-2]
                [--match-every 20] [--heartbeat 30] [--grace 240]
      Each agent (one thread, its own mutual-TLS connection with its client certificate) sends
      NDJSON batches (gzip) of Sysmon process-creation events to POST /api/v1/ingest every
      `--interval` seconds, plus a heartbeat every `--heartbeat` seconds. Every event has a fresh
      UUIDv7 `event.id`, the agent's own `agent.id` and hostname. Like a real agent with a disk
      spool, it sends a batch again (same ids) after a connection error, a 5xx or a 503 until it
      is answered 202, and only then builds the next one. Every `--match-every`-th event runs
      `...\\whoami.exe` (the soak rule matches it), the others a harmless image.

      After `--duration` an agent stops building batches; the batch in flight is sent until it
      is accepted or `--grace` seconds have passed. Per agent, DIR/agent-NNN.log records each
      batch before its first attempt and its outcome:
          S <seq> <id>:<m>,<id>:<m>,...     sent (m = 1 if the event matches the rule)
          A <seq> <accepted> <duplicates> <rejected_events> [<rejected index>,...]
          X <seq>                           given up (never answered 202)
      DIR/summary.json has the totals (requests, retries by cause, heartbeats, ...).
"""
import argparse, gzip, http.client, json, os, random, signal, ssl, subprocess, sys, threading, time, uuid
from urllib.parse import urlparse

RULE_IMAGE = "C:\\Windows\\System32\\whoami.exe"
OTHER_IMAGES = [
    ("C:\\Windows\\System32\\notepad.exe", "notepad.exe C:\\Users\\alice\\todo.txt"),
    ("C:\\Windows\\System32\\svchost.exe", "svchost.exe -k netsvcs -p"),
    ("C:\\Program Files\\Mozilla Firefox\\firefox.exe", "firefox.exe -contentproc"),
    ("C:\\Windows\\System32\\conhost.exe", "conhost.exe 0xffffffff -ForceV1"),
    ("C:\\Windows\\SysWOW64\\PING.EXE", "ping -n 6 127.0.0.1"),
    ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe"),
]
STOP = threading.Event()


def uuid7():
    """A UUIDv7 (time-ordered), as Dozor agents make them."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def loopback_only(url):
    u = urlparse(url)
    if u.scheme != "https" or u.hostname not in ("127.0.0.1", "::1"):
        sys.exit(f"agents.py only talks to https://127.0.0.1 (got {url})")
    return u


def facts(hostname):
    return {"hostname": hostname, "os_type": "windows", "os_name": "Windows 10 Pro (soak simulation)",
            "os_version": "10.0.19045", "arch": "x86_64", "agent_version": "0.0.0-soak", "ips": ["127.0.0.1"]}


def run_cmd(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


# ------------------------------------------------------------------------------ enrollment

def enroll_one(a, u, ctx, i, prefix):
    hostname = f"{prefix}-{i:03d}"
    key = os.path.join(a.out, f"agent-{i:03d}.key.pem")
    csr = os.path.join(a.out, f"agent-{i:03d}.csr.pem")
    crt = os.path.join(a.out, f"agent-{i:03d}.crt.pem")
    run_cmd(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={hostname}"])
    body = json.dumps({"token": a.token, "csr_pem": open(csr).read(), "facts": facts(hostname)}).encode()
    last = None
    for _ in range(30):
        try:
            conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
            conn.request("POST", "/api/v1/agents/enroll", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            payload = r.read()
            conn.close()
            if r.status == 200:
                answer = json.loads(payload)
                with open(crt, "w") as f:
                    f.write(answer["certificate_pem"])
                return {"index": i, "hostname": hostname, "agent_id": answer["agent_id"], "cert": crt, "key": key}
            last = f"HTTP {r.status}: {payload[:300]!r}"
            if r.status < 500:
                break
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(1)
    raise RuntimeError(f"enrollment of {hostname} failed: {last}")


def cmd_enroll(a):
    u = loopback_only(a.url)
    ctx = ssl.create_default_context(cafile=a.ca)
    os.makedirs(a.out, exist_ok=True)
    results, errors = [None] * a.agents, []
    lock = threading.Lock()
    next_i = iter(range(a.agents))

    def work():
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            try:
                results[i] = enroll_one(a, u, ctx, i, a.prefix)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=work) for _ in range(min(8, a.agents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("\n".join(errors))
    with open(os.path.join(a.out, "agents.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"enrolled {len(results)} agents")


# ------------------------------------------------------------------------------ sending

class Agent(threading.Thread):
    def __init__(self, a, u, info, deadline, stats):
        super().__init__(daemon=True)
        self.a, self.u, self.info, self.deadline, self.stats = a, u, info, deadline, stats
        self.rng = random.Random(a.seed * 1000 + info["index"])
        self.ctx = ssl.create_default_context(cafile=a.ca)
        self.ctx.load_cert_chain(info["cert"], info["key"])
        self.conn = None
        self.log = open(os.path.join(a.out, f"agent-{info['index']:03d}.log"), "w", buffering=1)
        self.record = 0
        self.c = {"batches": 0, "events_sent": 0, "events_accepted": 0, "events_rejected": 0, "duplicates_reported": 0,
                  "given_up_batches": 0, "given_up_events": 0, "matching_accepted": 0, "requests": 0,
                  "retries_connection": 0, "retries_503": 0, "retries_5xx": 0, "retries_other": 0,
                  "heartbeats_ok": 0, "heartbeats_failed": 0, "max_batch_seconds": 0.0, "unexpected": []}

    def connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.u.hostname, self.u.port, context=self.ctx, timeout=30)
        return self.conn

    def drop_connection(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.conn = None

    def post(self, path, body, headers):
        """One attempt: (status, retry-after header, payload) or (None, None, error text)."""
        self.c["requests"] += 1
        try:
            conn = self.connection()
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            payload = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.drop_connection()
            return r.status, r.getheader("Retry-After"), payload
        except (OSError, http.client.HTTPException) as e:
            self.drop_connection()
            return None, None, repr(e)

    def event(self, seq_in_agent, now_text):
        h = self.info["hostname"]
        matching = seq_in_agent % self.a.match_every == 0
        image, cmdline = (RULE_IMAGE, "whoami /all") if matching else self.rng.choice(OTHER_IMAGES)
        pid = self.rng.randrange(1000, 60000)
        ppid = self.rng.randrange(1000, 60000)
        self.record += 1
        eid = uuid7()
        doc = {
            "@timestamp": now_text,
            "event": {"id": eid, "kind": "event", "category": ["process"], "type": ["start"], "code": "1",
                      "provider": "Microsoft-Windows-Sysmon", "module": "windows"},
            "agent": {"id": self.info["agent_id"], "name": h, "type": "dozor-agent", "version": "0.0.0-soak"},
            "host": {"name": h, "hostname": h},
            "process": {"executable": image, "name": image.rsplit("\\", 1)[-1], "command_line": cmdline, "pid": pid,
                        "parent": {"executable": "C:\\Windows\\explorer.exe", "name": "explorer.exe", "pid": ppid}},
            "user": {"domain": "SOAK", "name": "alice"},
            "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "provider_name": "Microsoft-Windows-Sysmon",
                       "event_id": 1, "record_id": self.record, "computer": h,
                       "event_data": {"Image": image, "CommandLine": cmdline, "ProcessId": pid,
                                      "ParentImage": "C:\\Windows\\explorer.exe", "ParentProcessId": ppid,
                                      "User": "SOAK\\alice", "IntegrityLevel": "Medium"}},
        }
        return eid, matching, json.dumps(doc, separators=(",", ":"))

    def heartbeat(self):
        body = json.dumps({"facts": facts(self.info["hostname"]), "health": [],
                           "resources": {"cpu_percent": round(self.rng.random() * 5, 2), "rss_bytes": 30 << 20},
                           "spool": {"queued_records": 0, "queued_bytes": 0}}).encode()
        status, _, payload = self.post("/api/v1/agents/heartbeat", body, {"Content-Type": "application/json"})
        if status == 200:
            self.c["heartbeats_ok"] += 1
        else:
            self.c["heartbeats_failed"] += 1

    def send_batch(self, seq, ids, matches, body):
        """Sends until 202 (True) or the grace period after the deadline ends (False)."""
        started = time.monotonic()
        give_up_at = self.deadline + self.a.grace
        delay = 0.5
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        while True:
            status, retry_after, payload = self.post("/api/v1/ingest", body, headers)
            if status == 202:
                rep = json.loads(payload)
                rejected_idx = sorted({r["index"] for r in rep.get("rejected", [])})
                self.log.write(f"A {seq} {rep.get('accepted', 0)} {rep.get('duplicates', 0)} {rep.get('rejected_events', 0)} "
                               f"{','.join(map(str, rejected_idx))}\n")
                n_rej = rep.get("rejected_events", 0)
                self.c["events_accepted"] += len(ids) - n_rej
                self.c["events_rejected"] += n_rej
                self.c["duplicates_reported"] += rep.get("duplicates", 0)
                rej = set(rejected_idx)
                self.c["matching_accepted"] += sum(1 for k, m in enumerate(matches) if m and k not in rej)
                if n_rej and len(self.c["unexpected"]) < 5:
                    self.c["unexpected"].append(f"rejected: {rep.get('rejected', [])[:3]}")
                self.c["max_batch_seconds"] = max(self.c["max_batch_seconds"], time.monotonic() - started)
                return True
            if status is None:
                self.c["retries_connection"] += 1
            elif status == 503:
                self.c["retries_503"] += 1
            elif status >= 500:
                self.c["retries_5xx"] += 1
            else:
                # 4xx: a real agent drops such a batch for good; here it is a bug to report.
                self.c["retries_other"] += 1
                if len(self.c["unexpected"]) < 5:
                    self.c["unexpected"].append(f"HTTP {status}: {payload[:300]!r}")
            now = time.monotonic()
            if STOP.is_set() or now >= give_up_at or (status is not None and 400 <= status < 500 and status != 429):
                self.log.write(f"X {seq}\n")
                self.c["given_up_batches"] += 1
                self.c["given_up_events"] += len(ids)
                return False
            wait = delay
            if retry_after:
                try:
                    wait = max(wait, float(retry_after))
                except ValueError:
                    pass
            delay = min(delay * 2, 5.0)
            STOP.wait(min(wait, max(0.0, give_up_at - now)) + self.rng.random() * 0.2)

    def run(self):
        lo, hi = self.a.interval
        # Spread the agents' first batches over the first interval.
        STOP.wait(self.rng.random() * hi)
        next_hb = time.monotonic() + self.rng.random() * self.a.heartbeat
        seq, n = 0, 0
        while not STOP.is_set() and time.monotonic() < self.deadline:
            t0 = time.monotonic()
            if t0 >= next_hb:
                self.heartbeat()
                next_hb = t0 + self.a.heartbeat
            now_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
            ids, matches, lines = [], [], []
            for _ in range(self.a.batch):
                eid, m, line = self.event(n, now_text)
                n += 1
                ids.append(eid)
                matches.append(m)
                lines.append(line)
            body = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)
            self.log.write(f"S {seq} " + ",".join(f"{i}:{int(m)}" for i, m in zip(ids, matches)) + "\n")
            self.c["batches"] += 1
            self.c["events_sent"] += len(ids)
            self.send_batch(seq, ids, matches, body)
            seq += 1
            pause = self.rng.uniform(lo, hi) - (time.monotonic() - t0)
            if pause > 0:
                STOP.wait(min(pause, max(0.0, self.deadline - time.monotonic())))
        self.drop_connection()
        self.log.close()


def cmd_run(a):
    u = loopback_only(a.url)
    infos = json.load(open(os.path.join(a.out, "agents.json")))
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    start = time.monotonic()
    started_at = time.time()
    deadline = start + a.duration
    agents = [Agent(a, u, info, deadline, None) for info in infos]
    for ag in agents:
        ag.start()
    for ag in agents:
        while ag.is_alive():
            ag.join(1)
    totals = {}
    for ag in agents:
        for k, v in ag.c.items():
            if k == "unexpected":
                totals.setdefault(k, []).extend(v)
            elif k == "max_batch_seconds":
                totals[k] = round(max(totals.get(k, 0.0), v), 2)
            else:
                totals[k] = totals.get(k, 0) + v
    totals.update({"agents": len(agents), "started_at": started_at, "seconds": round(time.monotonic() - start, 1)})
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(totals, f, indent=1)
    print(json.dumps(totals))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("enroll")
    e.add_argument("--url", required=True)
    e.add_argument("--ca", required=True)
    e.add_argument("--token", required=True)
    e.add_argument("--agents", type=int, default=50)
    e.add_argument("--prefix", default="soak")
    e.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--ca", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--duration", type=float, default=900)
    r.add_argument("--batch", type=int, default=50)
    r.add_argument("--interval", default="1-2", help="seconds between batches: MIN-MAX")
    r.add_argument("--match-every", type=int, default=20)
    r.add_argument("--heartbeat", type=float, default=30)
    r.add_argument("--grace", type=float, default=240)
    r.add_argument("--seed", type=int, default=12)
    a = ap.parse_args()
    if a.cmd == "enroll":
        cmd_enroll(a)
    else:
        lo, _, hi = a.interval.partition("-")
        a.interval = (float(lo), float(hi or lo))
        cmd_run(a)


if __name__ == "__main__":
    main()
