#!/usr/bin/env python3
"""Hostile load against a running `dozor server` on loopback (bench/hostile/run.sh starts it).

All at once, for --seconds: the inputs of issue 12's review —
  login     N threads posting wrong passwords (argon2 on each attempt the server lets through)
  json      M threads posting a 15 MiB `[[[],[],…]]` body to /api/v1/ingest
  fields    K threads posting one event XML with 80,000 data fields to /api/v1/ingest/evtx
  slow      S connections sending a request body one byte every 5 s
while one "unrelated" client posts a one-event NDJSON batch every second and times the answer.

Prints one JSON object: per attack the answers by status, and the unrelated client's
latencies (p50, max, count, failures). The server's memory is read by run.sh.
"""
import argparse, http.client, json, re, socket, ssl, sys, threading, time, uuid
from urllib.parse import urlparse

STOP = threading.Event()
LOCK = threading.Lock()
COUNTS = {}


def count(attack, what):
    with LOCK:
        COUNTS.setdefault(attack, {})
        COUNTS[attack][what] = COUNTS[attack].get(what, 0) + 1


def connect(a, timeout=120):
    return http.client.HTTPSConnection(a.host, a.port, context=a.ctx, timeout=timeout)


def request(a, attack, method, path, body=None, headers=None):
    conn = connect(a)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        count(attack, str(r.status))
        return r.status, r.getheaders(), data
    except Exception as e:  # a refused or reset connection is an answer too
        count(attack, type(e).__name__)
        return None, [], b""
    finally:
        conn.close()


def login_attack(a):
    while not STOP.is_set():
        status, headers, html = request(a, "login", "GET", "/login")
        m = re.search(rb'name="csrf" value="([^"]+)"', html)
        cookie = next((v.split(";")[0] for k, v in headers if k.lower() == "set-cookie"), None)
        if not m or not cookie:
            time.sleep(0.2)
            continue
        for _ in range(20):
            if STOP.is_set():
                return
            form = f"username={a.user}&password=wrong-{uuid.uuid4().hex}&csrf={m.group(1).decode()}"
            status, _, _ = request(a, "login", "POST", "/login", form,
                                   {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
            if status == 429:
                time.sleep(0.05)


def json_attack(a, body):
    headers = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"}
    while not STOP.is_set():
        request(a, "json", "POST", "/api/v1/ingest", body, headers)


def fields_attack(a, body):
    headers = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/xml"}
    while not STOP.is_set():
        request(a, "fields", "POST", "/api/v1/ingest/evtx", body, headers)


def slow_attack(a):
    while not STOP.is_set():
        try:
            raw = socket.create_connection((a.host, a.port), timeout=30)
            s = a.ctx.wrap_socket(raw, server_hostname=a.host)
            s.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000\r\n\r\n")
            while not STOP.is_set():
                s.sendall(b"[")
                count("slow", "byte sent")
                STOP.wait(5)
            s.close()
        except Exception as e:
            count("slow", type(e).__name__)
            STOP.wait(1)


def unrelated(a, latencies, failures):
    headers = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/x-ndjson"}
    while not STOP.is_set():
        event = {"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "event": {"id": str(uuid.uuid4()), "kind": "event"}, "message": "unrelated"}
        t0 = time.monotonic()
        status, _, _ = request(a, "unrelated", "POST", "/api/v1/ingest", json.dumps(event) + "\n", headers)
        dt = time.monotonic() - t0
        if status == 202:
            latencies.append(dt)
        else:
            failures.append(status)
        STOP.wait(max(0.0, 1.0 - dt))


def nested_json(size):
    # `[[[],[],…]]`: two bytes per empty array — the shape that cost 40× its size before.
    inner = (size - 2) // 3
    return b"[" + b",".join([b"[]"] * inner) + b"]"


def many_fields_xml(n):
    data = "".join(f'<Data Name="F{i}">v{i}</Data>' for i in range(n))
    return ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            '<Provider Name="Hostile"/><EventID>1</EventID><TimeCreated SystemTime="2026-01-01T00:00:00Z"/>'
            '<Computer>hostile</Computer><Channel>Hostile</Channel></System>'
            f'<EventData>{data}</EventData></Event>').encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--login", type=int, default=60)
    ap.add_argument("--json", type=int, default=6)
    ap.add_argument("--fields", type=int, default=2)
    ap.add_argument("--slow", type=int, default=50)
    # Just under the default ingest body limit (limits.max_body_bytes, 16 MiB), so the parse runs.
    ap.add_argument("--json-bytes", type=int, default=15 * 1024 * 1024)
    a = ap.parse_args()
    u = urlparse(a.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("hostile.py only targets loopback addresses")
    a.host, a.port = u.hostname, u.port
    a.ctx = ssl.create_default_context(cafile=a.ca)
    a.ctx.check_hostname = False

    json_body = nested_json(a.json_bytes)
    xml_body = many_fields_xml(80_000)
    latencies, failures = [], []
    threads = [threading.Thread(target=unrelated, args=(a, latencies, failures))]
    threads += [threading.Thread(target=login_attack, args=(a,)) for _ in range(a.login)]
    threads += [threading.Thread(target=json_attack, args=(a, json_body)) for _ in range(a.json)]
    threads += [threading.Thread(target=fields_attack, args=(a, xml_body)) for _ in range(a.fields)]
    threads += [threading.Thread(target=slow_attack, args=(a,)) for _ in range(a.slow)]
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(a.seconds)
    STOP.set()
    for t in threads:
        t.join(timeout=150)
    lat = sorted(latencies)
    print(json.dumps({
        "seconds": a.seconds,
        "json_body_bytes": len(json_body),
        "xml_body_bytes": len(xml_body),
        "answers": COUNTS,
        "unrelated": {
            "ok": len(lat),
            "failed": len(failures),
            "failures": [str(f) for f in failures[:10]],
            "p50_s": round(lat[len(lat) // 2], 3) if lat else None,
            "max_s": round(lat[-1], 3) if lat else None,
        },
    }))


if __name__ == "__main__":
    main()
