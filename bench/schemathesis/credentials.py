#!/usr/bin/env python3
"""Credentials for the schemathesis run against a fresh `dozor server` (loopback only).

For each role (admin, analyst, viewer) it creates an operator account with `dozor users
create`, signs in through the dashboard and creates that user's personal API token the way a
person does (POST /ui/profile/tokens), so every API call is made as a real user. It also
enrolls one agent (an enrollment token from `dozor tokens create`, a CSR made with openssl,
POST /api/v1/agents/enroll) so the agent routes are tried with a client certificate.

Writes OUT/credentials.env (ADMIN_TOKEN=..., ANALYST_TOKEN=..., VIEWER_TOKEN=...,
AGENT_CERT=..., AGENT_KEY=..., AGENT_ID=...).

usage: credentials.py --dozor BIN --data-dir DIR --url https://127.0.0.1:PORT --ca ca.pem --out DIR
"""
import argparse, http.cookiejar, json, os, re, secrets, ssl, subprocess, sys, urllib.parse, urllib.request
from urllib.parse import urlparse

ROLES = ("admin", "analyst", "viewer")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """The sign-in answers 303 to the dashboard; the status is what we check."""

    def redirect_request(self, *args, **kwargs):
        return None


def opener(ctx):
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ctx),
        urllib.request.HTTPCookieProcessor(jar),
        NoRedirect,
    )


def fetch(op, url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with op.open(urllib.request.Request(url, data=data), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def csrf_of(html, what):
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    if not m:
        sys.exit(f"no csrf field on {what}")
    return m.group(1)


def personal_token(url, ctx, user, password, role):
    op = opener(ctx)
    status, html = fetch(op, f"{url}/login")
    if status != 200:
        sys.exit(f"GET /login: {status}")
    status, body = fetch(op, f"{url}/login", {"username": user, "password": password, "csrf": csrf_of(html, "/login")})
    if status not in (302, 303):
        sys.exit(f"sign-in of {user}: {status}: {body[:300]}")
    status, html = fetch(op, f"{url}/ui/profile")
    if status != 200:
        sys.exit(f"GET /ui/profile as {user}: {status}")
    status, html = fetch(
        op,
        f"{url}/ui/profile/tokens",
        {"name": f"schemathesis-{role}", "role": role, "expires": "1", "csrf": csrf_of(html, "/ui/profile")},
    )
    m = re.search(r"dzt_[A-Za-z0-9_-]+", html)
    if status != 200 or not m:
        sys.exit(f"token of {user}: {status}: no dzt_ secret on the page")
    return m.group(0)


def run(cmd, stdin=None):
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip()


def enroll_agent(dozor, data_dir, url, ctx, out):
    secret = run([dozor, "tokens", "create", "--name", "schemathesis", "--expires", "1h", "--uses", "1", "--data-dir", data_dir])
    key, csr = os.path.join(out, "agent.key.pem"), os.path.join(out, "agent.csr.pem")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=schemathesis-agent"])
    body = {
        "token": secret,
        "csr_pem": open(csr).read(),
        "facts": {"hostname": "schemathesis-agent", "os_type": "linux", "os_name": "Test", "os_version": "1",
                  "arch": "x86_64", "agent_version": "0.0.0", "ips": ["127.0.0.1"]},
    }
    req = urllib.request.Request(f"{url}/api/v1/agents/enroll", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        answer = json.load(r)
    cert = os.path.join(out, "agent.crt.pem")
    with open(cert, "w") as f:
        f.write(answer["certificate_pem"])
    return answer["agent_id"], cert, key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dozor", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if urlparse(a.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("credentials.py only targets loopback addresses")
    ctx = ssl.create_default_context(cafile=a.ca)
    lines = []
    for role in ROLES:
        user, password = f"st-{role}", secrets.token_urlsafe(18)
        run([a.dozor, "users", "create", user, "--role", role, "--password-stdin", "--data-dir", a.data_dir], stdin=password + "\n")
        lines.append(f"{role.upper()}_TOKEN={personal_token(a.url, ctx, user, password, role)}")
    agent_id, cert, key = enroll_agent(a.dozor, a.data_dir, a.url, ctx, a.out)
    lines += [f"AGENT_ID={agent_id}", f"AGENT_CERT={cert}", f"AGENT_KEY={key}"]
    path = os.path.join(a.out, "credentials.env")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    print(path)


if __name__ == "__main__":
    main()
