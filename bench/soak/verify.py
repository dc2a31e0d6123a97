#!/usr/bin/env python3
"""Checks a soak run against PostgreSQL and prints the result (stdlib + the psql CLI).

usage: verify.py --out DIR --db NAME --rule-id ID --duration SECS --rss FILE --faults FILE
                 [--broker redis|nats] [--json FILE]

Reads what the simulated agents recorded (DIR/agents.json, DIR/agent-NNN.log, see agents.py),
loads every id sent into a table `soak_sent` of the soak database and compares it with the
`events` and `alerts` tables the server wrote:

  * every event accepted (answered 202) is stored exactly once: no id missing, no id stored
    twice, no stored id that was never sent, each stored under the agent that sent it;
  * per agent, the soak rule's alerts count exactly the agent's matching events that were
    stored (the store records a detection only with the event's first insert, in the same
    transaction, so the count is exact, not a lower bound), and the rule's hit count is the
    total;
  * memory stays bounded: per role, the mean RSS of the last quarter of the run is not more than
    twice that of the first quarter and not more than 256 MB above it.

Prints a markdown table row and PASS or FAIL with the reasons; exits 1 on FAIL.
"""
import argparse, json, os, subprocess, sys
from collections import defaultdict


def psql(db, sql, stdin=None):
    r = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-At", "-F", "\t", "-c", sql], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"psql failed: {r.stderr.strip()}\n{sql}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def one(db, sql):
    rows = psql(db, sql)
    return int(rows[0][0] or 0) if rows else 0


def read_logs(out):
    """-> list of (id, agent_id, matching, accepted), plus counts."""
    infos = json.load(open(os.path.join(out, "agents.json")))
    rows, rejected = [], 0
    for info in infos:
        path = os.path.join(out, f"agent-{info['index']:03d}.log")
        if not os.path.exists(path):
            continue
        sent, outcome = {}, {}
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ")
                if parts[0] == "S" and len(parts) == 3:
                    sent[parts[1]] = [p.split(":") for p in parts[2].split(",")]
                elif parts[0] == "A":
                    rej = {int(x) for x in parts[5].split(",")} if len(parts) > 5 and parts[5] else set()
                    outcome[parts[1]] = rej
                elif parts[0] == "X":
                    outcome[parts[1]] = None
        for seq, events in sent.items():
            rej = outcome.get(seq)  # missing: the process died with the batch in flight
            for k, (eid, m) in enumerate(events):
                ok = seq in outcome and rej is not None and k not in rej
                if seq in outcome and rej is not None and k in rej:
                    rejected += 1
                rows.append((eid, info["agent_id"], m == "1", ok))
    return infos, rows, rejected


def rss_stats(path, duration):
    """Per role: peak RSS of one process, mean RSS per process in the first and last quarter of
    the run (MB). Lines of the file: <seconds since start> <role> <name> <pid> <VmRSS kB>."""
    samples = defaultdict(list)
    if os.path.exists(path):
        for line in open(path):
            p = line.split()
            if len(p) == 5:
                samples[p[1]].append((float(p[0]), int(p[4])))
    out = {}
    q = duration / 4
    for role, items in samples.items():
        first = [kb for t, kb in items if t < q]
        last = [kb for t, kb in items if duration - q <= t <= duration]
        mean = lambda xs: (sum(xs) / len(xs) / 1024) if xs else 0.0  # noqa: E731
        out[role] = {"peak_mb": round(max(kb for _, kb in items) / 1024), "first_q_mb": round(mean(first)),
                     "last_q_mb": round(mean(last)), "samples": len(items)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--rule-id", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--rss", required=True)
    ap.add_argument("--faults", required=True)
    ap.add_argument("--broker", default="redis")
    ap.add_argument("--json")
    a = ap.parse_args()
    db, rule = a.db, a.rule_id.replace("'", "")
    infos, rows, rejected = read_logs(a.out)
    summary = json.load(open(os.path.join(a.out, "summary.json"))) if os.path.exists(os.path.join(a.out, "summary.json")) else {}

    psql(db, "DROP TABLE IF EXISTS soak_sent; CREATE TABLE soak_sent (id UUID PRIMARY KEY, agent_id TEXT NOT NULL, "
             "matching BOOLEAN NOT NULL, accepted BOOLEAN NOT NULL)")
    data = "".join(f"{i},{ag},{'t' if m else 'f'},{'t' if ok else 'f'}\n" for i, ag, m, ok in rows)
    psql(db, "COPY soak_sent FROM STDIN WITH (FORMAT csv)", stdin=data)
    psql(db, "ANALYZE soak_sent")

    r = {}
    r["sent"] = len(rows)
    r["accepted"] = one(db, "SELECT count(*) FROM soak_sent WHERE accepted")
    r["unconfirmed"] = r["sent"] - r["accepted"] - rejected
    r["rejected"] = rejected
    r["stored_total"] = one(db, "SELECT count(*) FROM events")
    r["stored_accepted"] = one(db, "SELECT count(*) FROM soak_sent s JOIN events e ON e.id = s.id WHERE s.accepted")
    r["missing"] = r["accepted"] - r["stored_accepted"]
    r["missing_examples"] = psql(db, "SELECT s.id, s.agent_id FROM soak_sent s WHERE s.accepted AND NOT EXISTS "
                                     "(SELECT 1 FROM events e WHERE e.id = s.id) LIMIT 5")
    r["ids_stored_twice"] = one(db, "SELECT count(*) FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) d")
    r["stored_never_sent"] = one(db, "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM soak_sent s WHERE s.id = e.id)")
    r["stored_unconfirmed"] = one(db, "SELECT count(*) FROM soak_sent s JOIN events e ON e.id = s.id WHERE NOT s.accepted")
    r["stored_under_other_agent"] = one(db, "SELECT count(*) FROM soak_sent s JOIN events e ON e.id = s.id "
                                            "WHERE e.agent_id IS DISTINCT FROM s.agent_id")
    # Alerts of the soak rule, per agent.
    alert_rows = psql(db, f"""
        WITH exp AS (SELECT s.agent_id, count(*) FILTER (WHERE s.accepted) AS acc, count(e.id) AS stored
                     FROM soak_sent s LEFT JOIN events e ON e.id = s.id WHERE s.matching GROUP BY 1),
             got AS (SELECT agent_id, sum(count) AS n, count(*) AS alerts FROM alerts WHERE rule_id = '{rule}' GROUP BY 1)
        SELECT coalesce(exp.agent_id, got.agent_id), coalesce(exp.acc, 0), coalesce(exp.stored, 0),
               coalesce(got.n, 0), coalesce(got.alerts, 0)
        FROM exp FULL JOIN got ON got.agent_id = exp.agent_id ORDER BY 1""")
    expected_agents = found_agents = 0
    alert_problems = []
    det_expected = det_found = alerts_rows = 0
    for agent, acc, stored, n, alerts in alert_rows:
        acc, stored, n, alerts = int(acc), int(stored), int(n), int(alerts)
        det_expected += stored
        det_found += n
        alerts_rows += alerts
        if acc > 0:
            expected_agents += 1
            if alerts > 0 and n == stored:
                found_agents += 1
        if n != stored:
            alert_problems.append(f"agent {agent}: {stored} matching events stored, alerts count {n} ({alerts} alerts)")
    r["alert_agents_expected"] = expected_agents
    r["alert_agents_found"] = found_agents
    r["alerts"] = alerts_rows
    r["detections_expected"] = det_expected
    r["detections_counted"] = det_found
    r["matching_accepted"] = sum(int(x[1]) for x in alert_rows)
    hit = psql(db, f"SELECT hit_count FROM rule_state WHERE rule_id = '{rule}'")
    r["rule_hit_count"] = int(hit[0][0]) if hit else 0
    r["other_alerts"] = psql(db, f"SELECT rule_id, count(*), sum(count) FROM alerts WHERE rule_id <> '{rule}' GROUP BY 1")
    r["agents_registered"] = one(db, "SELECT count(*) FROM agents WHERE revoked_at IS NULL")
    r["agents_with_heartbeat"] = one(db, "SELECT count(*) FROM agents WHERE last_heartbeat IS NOT NULL")

    faults = defaultdict(int)
    if os.path.exists(a.faults):
        for line in open(a.faults):
            p = line.split()
            if len(p) >= 2:
                faults[p[1]] += 1
    r["faults"] = dict(faults)
    r["rss"] = rss_stats(a.rss, a.duration)
    r["generator"] = summary

    reasons = []
    if r["accepted"] == 0:
        reasons.append("no event was accepted")
    if r["missing"]:
        reasons.append(f"{r['missing']} accepted events not stored (e.g. {r['missing_examples'][:3]})")
    if r["ids_stored_twice"]:
        reasons.append(f"{r['ids_stored_twice']} ids stored more than once")
    if r["stored_never_sent"]:
        reasons.append(f"{r['stored_never_sent']} stored events were never sent")
    if r["stored_under_other_agent"]:
        reasons.append(f"{r['stored_under_other_agent']} events stored under another agent id")
    if rejected:
        reasons.append(f"{rejected} events rejected by ingest validation")
    if expected_agents != found_agents or alert_problems:
        reasons.append(f"alerts: {found_agents}/{expected_agents} agents with exact counts; " + "; ".join(alert_problems[:5]))
    if r["rule_hit_count"] != det_expected:
        reasons.append(f"rule hit count {r['rule_hit_count']} != {det_expected} matching events stored")
    if summary.get("retries_other"):
        reasons.append(f"{summary['retries_other']} unexpected 4xx answers: {summary.get('unexpected', [])[:3]}")
    if r["agents_registered"] != len(infos):
        reasons.append(f"{r['agents_registered']} agents registered, {len(infos)} enrolled")
    for role, s in r["rss"].items():
        if s["first_q_mb"] and s["last_q_mb"] > max(2 * s["first_q_mb"], s["first_q_mb"] + 256):
            reasons.append(f"RSS of {role} grew: {s['first_q_mb']} MB in the first quarter, {s['last_q_mb']} MB in the last")
    need = {"worker_kill": 1, "server_restart": 1, "broker_restart": 1}
    for kind, n in need.items():
        if faults.get(kind, 0) < n:
            reasons.append(f"fault '{kind}' did not happen")

    rss = r["rss"]

    def role_cell(key):
        return " / ".join(f"{role} {rss[role][key]}" for role in ("server", "worker", "broker") if role in rss)

    def quarters():
        return " / ".join(f"{role} {rss[role]['first_q_mb']}→{rss[role]['last_q_mb']}" for role in ("server", "worker", "broker") if role in rss)

    server_restarts = faults.get("server_restart", 0)
    header = ("| duration s | agents | broker | events accepted | stored | ids stored twice | missing | stored, never sent "
              "| alerts: agents expected / exact | detections expected / counted | worker kills | server restarts | broker restarts "
              "| peak RSS MB | mean RSS MB first → last quarter |")
    sep = "|" + "---:|" * 3 + "---:|" * 11 + "---|---|"
    row = (f"| {int(a.duration)} | {len(infos)} | {a.broker} | {r['accepted']:,} | {r['stored_accepted']:,} | {r['ids_stored_twice']} "
           f"| {r['missing']} | {r['stored_never_sent']} | {expected_agents} / {found_agents} | {det_expected:,} / {det_found:,} "
           f"| {faults.get('worker_kill', 0)} | {server_restarts} | {faults.get('broker_restart', 0)} "
           f"| {role_cell('peak_mb')} | {quarters()} |")
    r["verdict"] = "FAIL" if reasons else "PASS"
    r["reasons"] = reasons
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    print(header)
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(row)
    print()
    g = summary
    print(f"generator: {g.get('events_sent', 0):,} events in {g.get('batches', 0):,} batches, {g.get('requests', 0):,} requests; "
          f"retries: {g.get('retries_connection', 0)} connection errors, {g.get('retries_503', 0)} × 503, "
          f"{g.get('retries_5xx', 0)} other 5xx, {g.get('retries_other', 0)} 4xx; heartbeats {g.get('heartbeats_ok', 0)} ok / "
          f"{g.get('heartbeats_failed', 0)} failed; slowest batch {g.get('max_batch_seconds', 0)} s to its 202; "
          f"{g.get('given_up_batches', 0)} batches given up ({r['stored_unconfirmed']} of their events stored anyway)")
    print(f"store: {r['stored_total']:,} events in total; {r['alerts']} alerts of the soak rule; rule hit count "
          f"{r['rule_hit_count']:,}; other alerts: {r['other_alerts'] or 'none'}; agents registered {r['agents_registered']}, "
          f"with a heartbeat {r['agents_with_heartbeat']}")
    print(f"faults: {dict(faults)}")
    print(f"RSS MB per role: {json.dumps(rss)}")
    print()
    if reasons:
        print("FAIL")
        for x in reasons:
            print(f"  - {x}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
