#!/usr/bin/env python3
"""Writes a MISP feed directory (manifest.json, one <uuid>.json per event, hashes.csv) of
synthetic but realistic content, in the format MISP's feed export writes and the real
fixture ../shared/fixtures/misp/57c4445b-c548-4654-af0b-4be3950d210f.json shows:

- events with `Orgc`, `Tag` (TLP + taxonomy/galaxy tags), `info`, `date`, string timestamps,
  `Attribute` and `Object` (file / domain-ip / url objects whose attributes carry an
  `object_relation`), sizes skewed like a real feed (a few large events, many small ones);
- attributes of the usual MISP types (ip-dst, ip-dst|port, domain, domain|ip, hostname, url,
  md5, sha1, sha256, filename|sha256, email-src, regkey, user-agent, ja3-fingerprint-md5, ...)
  with `to_ids`, some attribute tags and first/last seen, plus ~2 % of non-indicator types
  (comment, text, link) that a consumer skips, and a few deleted attributes;
- hashes.csv: `md5(value),event uuid` per attribute.

usage: gen_feed.py --out DIR [--attributes 100000] [--events N] [--seed 14]
Prints one JSON line: {"attributes": N, "events": N, "objects": N, "bytes": N, ...}.
"""
import argparse, hashlib, ipaddress, json, os, random, uuid

TLDS = ["com", "net", "org", "ru", "xyz", "top", "info", "online", "site", "club", "io", "cn",
        "biz", "su", "pw", "cc", "de", "uk", "br", "in", "shop", "live", "icu", "buzz", "co"]
SYL = ["ka", "lo", "mi", "ne", "tro", "ban", "sec", "up", "dat", "ser", "vi", "ce", "no", "ra",
       "zo", "pex", "cor", "fin", "mal", "log", "net", "web", "cdn", "api", "sync", "mail",
       "cloud", "soft", "tech", "gate", "link", "host", "box", "q", "x", "z"]
EXTS = ["exe", "dll", "js", "vbs", "ps1", "doc", "docm", "xls", "xlsm", "zip", "rar", "lnk",
        "hta", "bat", "scr", "iso", "elf", "sh", "apk", "jar"]
EVENT_TAGS = [
    "osint:source-type=\"blog-post\"", "osint:source-type=\"block-or-filter-list\"", "type:OSINT",
    "circl:incident-classification=\"malware\"", "circl:incident-classification=\"phishing\"",
    "misp-galaxy:threat-actor=\"Sofacy\"", "misp-galaxy:threat-actor=\"Lazarus Group\"",
    "misp-galaxy:malpedia=\"Emotet\"", "misp-galaxy:malpedia=\"QakBot\"",
    "misp-galaxy:ransomware=\"LockBit\"", "malware_classification:malware-category=\"Ransomware\"",
    "ms-caro-malware:malware-type=\"Trojan\"", "kill-chain:Command and Control",
    "misp:confidence-level=\"usually-confident\"", "misp:confidence-level=\"fairly-confident\"",
]
ATTR_TAGS = ["c2", "payload_delivery", "mozi", "cobaltstrike", "botnet_cc", "phishing"]
ORGS = [("CIRCL", "55f6ea5e-2c60-40e5-964f-47a8950d210f"),
        ("abuse.ch", "55f6ea5e-51cc-4a41-a1f3-47a8950d210f"),
        ("Botvrij.eu", "5cf66e53-b5f8-43e7-be9a-49880a3b4631")]

# (MISP type, category, weight per mille): standalone attributes.
TYPES = [
    ("ip-dst", "Network activity", 230), ("ip-src", "Network activity", 40),
    ("ip-dst|port", "Network activity", 50), ("domain", "Network activity", 150),
    ("hostname", "Network activity", 50), ("domain|ip", "Network activity", 20),
    ("url", "Network activity", 150), ("md5", "Payload delivery", 60),
    ("sha1", "Payload delivery", 30), ("sha256", "Payload delivery", 100),
    ("sha512", "Payload delivery", 5), ("filename", "Payload delivery", 15),
    ("filename|sha256", "Payload delivery", 20), ("email-src", "Payload delivery", 20),
    ("imphash", "Payload delivery", 5), ("regkey", "Persistence mechanism", 5),
    ("user-agent", "Network activity", 3), ("ja3-fingerprint-md5", "Network activity", 2),
    ("comment", "Other", 5), ("text", "Other", 5), ("link", "External analysis", 10),
]


def word(r, lo=4, hi=12):
    want = r.randint(lo, hi)
    s = ""
    while len(s) < want:
        s += r.choice(SYL)
    if r.random() < 0.3:
        s += str(r.randrange(1000))
    return s


def domain(r):
    return f"{word(r)}.{r.choice(TLDS)}"


def ipv4(r):
    while True:
        a = ipaddress.IPv4Address(r.getrandbits(32))
        if a.is_global:
            return str(a)


def ipv6(r):
    return f"{r.choice(['2a01', '2a02', '2605', '2400'])}:{r.randrange(65536):x}:{r.randrange(65536):x}::{r.randrange(1, 65536):x}"


def url(r):
    host = ipv4(r) if r.random() < 0.25 else (domain(r) if r.random() < 0.5 else f"{word(r, 2, 6)}.{domain(r)}")
    port = f":{r.choice([8080, 8443, 8000, 81, 3000])}" if r.random() < 0.15 else ""
    path = "".join("/" + word(r, 2, 10) for _ in range(r.randint(1, 3)))
    if r.random() < 0.5:
        path += "." + r.choice(EXTS)
    if r.random() < 0.3:
        path += f"?id={r.getrandbits(32):08x}&v={r.randrange(100)}"
    return f"{'http' if r.random() < 0.6 else 'https'}://{host}{port}{path}"


def filename(r):
    return f"{word(r, 3, 12)}.{r.choice(EXTS)}"


def hexs(r, n):
    return f"{r.getrandbits(4 * n):0{n}x}"


def value(r, t):
    ip = lambda: ipv6(r) if r.random() < 0.03 else ipv4(r)
    return {
        "ip-dst": ip, "ip-src": ip,
        "ip-dst|port": lambda: f"{ipv4(r)}|{r.choice([443, 80, 8080, 4444, 1337])}",
        "domain": lambda: domain(r), "hostname": lambda: f"{word(r, 2, 8)}.{domain(r)}",
        "domain|ip": lambda: f"{domain(r)}|{ipv4(r)}", "url": lambda: url(r),
        "md5": lambda: hexs(r, 32), "sha1": lambda: hexs(r, 40), "sha256": lambda: hexs(r, 64),
        "sha512": lambda: hexs(r, 128), "imphash": lambda: hexs(r, 32),
        "filename": lambda: filename(r), "filename|sha256": lambda: f"{filename(r)}|{hexs(r, 64)}",
        "email-src": lambda: f"{word(r, 3, 8)}@{domain(r)}",
        "regkey": lambda: f"HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\{word(r)}",
        "user-agent": lambda: f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {word(r, 4, 8)}/{r.randrange(120)}.0",
        "ja3-fingerprint-md5": lambda: hexs(r, 32),
        "comment": lambda: "Imported via the Freetext Import Tool",
        "text": lambda: word(r, 5, 10).capitalize(),
        "link": lambda: f"https://www.virustotal.com/file/{hexs(r, 64)}/analysis/",
    }[t]()


def attribute(r, t, category, ts, relation=None):
    a = {
        "uuid": str(uuid.UUID(int=r.getrandbits(128), version=4)),
        "type": t, "category": category, "value": value(r, t),
        "to_ids": t not in ("comment", "text", "link") and r.random() < 0.85,
        "timestamp": str(ts - r.randrange(86400)), "comment": "",
        "deleted": r.random() < 0.002, "disable_correlation": False, "object_relation": relation,
        "distribution": "5", "sharing_group_id": "0",
    }
    if r.random() < 0.15:
        a["Tag"] = [{"colour": "#ffffff", "exportable": True, "name": r.choice(ATTR_TAGS)}]
    if r.random() < 0.3:
        a["first_seen"] = f"2025-{r.randint(1, 12):02}-{r.randint(1, 28):02}T00:00:00.000000+00:00"
    return a


def file_object(r, ts):
    attrs = [attribute(r, "filename", "Payload delivery", ts, "filename"),
             attribute(r, "md5", "Payload delivery", ts, "md5"),
             attribute(r, "sha1", "Payload delivery", ts, "sha1"),
             attribute(r, "sha256", "Payload delivery", ts, "sha256")]
    return {"name": "file", "meta-category": "file", "template_version": "24",
            "uuid": str(uuid.UUID(int=r.getrandbits(128), version=4)),
            "timestamp": str(ts), "deleted": False, "Attribute": attrs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--attributes", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=0, help="default: one per 500 attributes")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    r = random.Random(args.seed)
    n_events = args.events or max(1, args.attributes // 500)
    # Skewed sizes (a few big block-list events, many small reports), summing to the total.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(n_events)]
    r.shuffle(weights)
    total_w = sum(weights)
    sizes = [max(1, int(args.attributes * w / total_w)) for w in weights]
    sizes[0] += args.attributes - sum(sizes)
    if sizes[0] < 1:
        raise SystemExit("too many events for the attributes")
    types, cats, tw = zip(*TYPES)
    os.makedirs(args.out, exist_ok=True)
    manifest, hashes = {}, []
    stats = {"attributes": 0, "events": 0, "objects": 0, "bytes": 0, "deleted": 0,
             "non_indicator": 0, "composite": 0}
    base_ts = 1764900000
    for i, size in enumerate(sizes):
        ev_uuid = str(uuid.UUID(int=r.getrandbits(128), version=4))
        ts = base_ts - r.randrange(400 * 86400)
        org = r.choice(ORGS)
        tags = [{"colour": "#ffffff", "exportable": True, "name": r.choice(["tlp:white", "tlp:clear", "tlp:green"])}]
        for t in r.sample(EVENT_TAGS, r.randrange(4)):
            tags.append({"colour": "#3d7a00", "exportable": True, "name": t})
        attrs, objects, left = [], [], size
        while left > 0:
            if left >= 4 and r.random() < 0.05:  # ~20 % of attributes live in file objects
                objects.append(file_object(r, ts))
                left -= 4
                continue
            k = r.choices(range(len(types)), weights=tw)[0]
            attrs.append(attribute(r, types[k], cats[k], ts))
            left -= 1
        info = f"{r.choice(['OSINT', 'Malware', 'Phishing', 'C2'])} - {word(r, 5, 10).capitalize()} campaign {i}"
        date = "2025-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))
        event = {"Event": {
            "uuid": ev_uuid, "info": info, "date": date, "timestamp": str(ts),
            "publish_timestamp": str(ts + 60), "published": True, "analysis": "2",
            "threat_level_id": str(r.randint(1, 4)), "distribution": "3",
            "Orgc": {"name": org[0], "uuid": org[1]}, "Tag": tags,
            "Attribute": attrs, "Object": objects,
        }}
        text = json.dumps(event, separators=(",", ":"))
        with open(os.path.join(args.out, f"{ev_uuid}.json"), "w") as f:
            f.write(text)
        stats["bytes"] += len(text)
        manifest[ev_uuid] = {"Orgc": {"name": org[0], "uuid": org[1]}, "Tag": tags, "info": info,
                             "date": date, "analysis": 2, "threat_level_id": 3, "timestamp": ts}
        every = attrs + [a for o in objects for a in o["Attribute"]]
        for a in every:
            hashes.append(f"{hashlib.md5(a['value'].encode()).hexdigest()},{ev_uuid}")
            stats["deleted"] += a["deleted"]
            stats["non_indicator"] += a["type"] in ("comment", "text", "link")
            stats["composite"] += "|" in a["type"]
        stats["attributes"] += len(every)
        stats["objects"] += len(objects)
        stats["events"] += 1
    with open(os.path.join(args.out, "hashes.csv"), "w") as f:
        f.write("\n".join(hashes) + "\n")
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
