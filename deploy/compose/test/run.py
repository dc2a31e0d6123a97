#!/usr/bin/env python3
"""deploy/compose, for real: images built from the binaries just compiled, `single` and
`scale` brought up with the documented commands, checked end to end, torn down.

No container registry is reachable here, so (1) the Dozor images are built on a base image
made from this machine's own glibc (deploy/docker/make-base-image.sh), and (2) PostgreSQL,
Redis, HAProxy and clamd run as stand-in images built from this machine's Debian packages
(standins.sh) in place of the official images the compose files name; the compose files and
the Dozor images are the ones users run.

  single: comes up healthy (Docker runs `dozor healthcheck`), the first-start admin token
          works, events are stored and detected, and they survive a restart (data volume).
  scale:  `up.sh` brings it up; the agent container enrolls by itself and its events arrive;
          an EVTX uploaded through the load balancer produces alerts; a worker container is
          killed (SIGKILL) mid-stream and restarted, and every accepted event is stored once.

Environment: DOZOR_BIN_DIR (default $CARGO_TARGET_DIR/debug or target/debug) with `dozor` and
`dozor-agent`; DOZOR_AGENT_BIN (another agent binary, e.g. the static musl build);
DOZOR_SHARED_DIR (../shared); ONLY=single|scale; KEEP=1 leaves the last project up.
Needs root (it starts dockerd with the vfs driver when none is running).
"""

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
COMPOSE = os.path.join(ROOT, "deploy", "compose")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN_DIR = os.environ.get("DOZOR_BIN_DIR", os.path.join(TARGET, "debug"))
AGENT_BIN = os.environ.get("DOZOR_AGENT_BIN", os.path.join(BIN_DIR, "dozor-agent"))
SHARED = os.environ.get("DOZOR_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
TAG = "ci"
PREFIX = "dozor-ci"
STARTED = time.time()

RULES = {
    "whoami.yml": """title: Whoami (compose test)
id: 7c1d0a4c-0000-4000-8000-0000000000c1
level: high
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\\\whoami.exe'
    condition: sel
""",
    "sysmon-process.yml": """title: Sysmon process creation (compose test)
id: 7c1d0a4c-0000-4000-8000-0000000000c2
level: low
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '.exe'
    condition: sel
""",
}


def log(message):
    print(f"[{time.time() - STARTED:6.1f}s] {message}", flush=True)


def run(args, check=True, env=None, cwd=None, timeout=900, quiet=False):
    """Runs a command; returns its stdout (stderr passes through unless quiet)."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        timeout=timeout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
    )
    if check and result.returncode != 0:
        raise SystemExit(
            f"FAILED ({result.returncode}): {' '.join(args)}\n{result.stdout}"
            + (result.stderr or "")
        )
    return result.stdout


def wait(what, probe, timeout):
    """Calls probe() until it answers something truthy; fails with `what` after timeout s."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            answer = probe()
            if answer:
                return answer
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(1)
    raise SystemExit(f"TIMED OUT after {timeout}s waiting for {what} (last error: {last})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """HTTPS client with the server's CA pinned (fetched once, unverified, like `curl -k`)."""

    def __init__(self, base):
        self.base = base
        self.token = None
        self.context = None

    def pin_ca(self):
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(self.base + "/api/v1/ca.pem", context=unverified, timeout=10) as r:
            pem = r.read().decode()
        self.context = ssl.create_default_context(cadata=pem)
        return pem

    def request(self, method, path, body=None, content_type=None, timeout=60):
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, **kwargs):
        status, body = self.request(method, path, **kwargs)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def ready(self):
        status, _ = self.request("GET", "/readyz", timeout=5)
        return status == 200

    def count(self, query):
        """Events matching `query`, all time (the histogram's buckets summed)."""
        from urllib.parse import quote

        answer = self.json(
            "GET",
            f"/api/v1/events/histogram?q={quote(query)}&from=2020-01-01T00:00:00Z&to=now&interval=30d",
        )
        return sum(b.get("count", 0) for b in answer.get("buckets", []))


def event(n, image, marker):
    return {
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "event": {
            "id": f"01900000-0000-7000-8000-{n:012d}",
            "kind": "event",
            "category": ["process"],
            "type": ["start"],
            "dataset": marker,
        },
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "event_id": 1,
            "provider_name": "Microsoft-Windows-Sysmon",
            "computer": "pc1",
            "event_data": {"Image": image, "CommandLine": "x"},
        },
    }


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


# ------------------------------------------------------------------------------ docker


def ensure_docker():
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        raise SystemExit("docker and docker-compose are needed (apt-get install docker.io docker-compose)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    log("starting dockerd (vfs storage driver)")
    with open(os.path.join(tempfile.gettempdir(), "dozor-ci-dockerd.log"), "ab") as out:
        subprocess.Popen(
            ["dockerd", "--storage-driver=vfs"], stdout=out, stderr=out, start_new_session=True
        )
    wait("dockerd", lambda: subprocess.run(["docker", "info"], capture_output=True).returncode == 0, 60)


def build_images():
    for f in (os.path.join(BIN_DIR, "dozor"), AGENT_BIN):
        if not os.access(f, os.X_OK):
            raise SystemExit(f"{f}: not built (cargo build -p dozor-cli -p dozor-agent)")
    log(f"images from {BIN_DIR}/dozor and {AGENT_BIN}")
    run([os.path.join(ROOT, "deploy/docker/make-base-image.sh"), "--tag", f"{PREFIX}/base",
         os.path.join(BIN_DIR, "dozor"), AGENT_BIN])
    run([os.path.join(ROOT, "deploy/docker/build-images.sh"), "--bin-dir", BIN_DIR,
         "--agent-bin", AGENT_BIN, "--base", f"{PREFIX}/base", "--tag", TAG, "--strip"])
    run([os.path.join(HERE, "standins.sh"), PREFIX])
    if "statically linked" in run(["file", "-L", AGENT_BIN], quiet=True) or "static-pie" in run(["file", "-L", AGENT_BIN], quiet=True):
        # The static agent's image is `scratch` plus the binary: no libc at all to lean on.
        created = run(["docker", "create", f"dozor/agent:{TAG}"], quiet=True).strip()
        try:
            files = subprocess.run(f"docker export {created} | tar -t", shell=True, check=True,
                                   capture_output=True, text=True).stdout.split()
        finally:
            run(["docker", "rm", "-v", created], quiet=True)  # -v: the VOLUME it made too
        libc = [f for f in files if "libc.so" in f or "ld-linux" in f or "ld-musl" in f]
        assert not libc, f"the static agent's image has a C library: {libc}"
        version = run(["docker", "run", "--rm", f"dozor/agent:{TAG}", "--version"], quiet=True).strip()
        log(f"static agent: {version} runs in an image of {len(files)} entries and no C library")


# Docker's vfs storage driver (the one that works here) keeps a full copy of every layer: the
# images of one run take a few GB, and each run re-tags them, which used to leave the previous
# run's copies behind as untagged images until the disk filled (seen: ENOSPC mid-test).
MIN_FREE_GB = 8


def images_of_this_test():
    out = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], quiet=True)
    return [i for i in out.split() if i.startswith(f"{PREFIX}/") or i in (f"dozor/server:{TAG}", f"dozor/agent:{TAG}")]


def remove_images():
    """Removes this test's images and any untagged ones (leftovers of earlier builds)."""
    images = images_of_this_test()
    if images:
        run(["docker", "image", "rm", "-f", *images], check=False, quiet=True)
    run(["docker", "image", "prune", "-f"], check=False, quiet=True)
    run(["docker", "builder", "prune", "-f"], check=False, quiet=True)


def check_free_space():
    root = run(["docker", "info", "-f", "{{.DockerRootDir}}"], quiet=True).strip() or "/var/lib/docker"
    free = shutil.disk_usage(root).free / 2**30
    log(f"{free:.1f} GB free under {root}")
    if free < MIN_FREE_GB:
        raise SystemExit(
            f"only {free:.1f} GB free under {root}: the images and containers of this test need "
            f"about {MIN_FREE_GB} GB with the vfs storage driver (docker system df tells what is there)"
        )


def compose_env(project, extra):
    env = dict(os.environ)
    env.update(
        {
            "COMPOSE_PROJECT_NAME": project,
            "DOZOR_TAG": TAG,
            "DOZOR_POSTGRES_IMAGE": f"{PREFIX}/postgres",
            "DOZOR_REDIS_IMAGE": f"{PREFIX}/redis",
            "DOZOR_HAPROXY_IMAGE": f"{PREFIX}/haproxy",
            "DOZOR_CLAMAV_IMAGE": f"{PREFIX}/clamd",
        }
    )
    env.update(extra)
    return env


def compose(directory, env, *args, check=True, timeout=600, quiet=False):
    return run(["docker-compose", *args], cwd=directory, env=env, check=check, timeout=timeout, quiet=quiet)


def container(directory, env, service):
    return compose(directory, env, "ps", "-q", service).strip()


def health(container_id):
    return run(["docker", "inspect", "-f", "{{.State.Health.Status}}", container_id], check=False, quiet=True).strip()


def dump_logs(directory, env):
    print("----- docker-compose logs (tail) -----", flush=True)
    print(compose(directory, env, "logs", "--no-color", "--tail", "60", check=False), flush=True)


def down(directory, env):
    if os.environ.get("KEEP") == "1":
        log(f"KEEP=1: {env['COMPOSE_PROJECT_NAME']} left up")
        return
    compose(directory, env, "down", "-v", "--remove-orphans", "--timeout", "10", check=False, quiet=True)


# ------------------------------------------------------------------------------ single


def test_single(rules):
    directory = os.path.join(COMPOSE, "single")
    port = free_port()
    env = compose_env(
        f"dozorci-single-{os.getpid()}",
        {"DOZOR_PORT": f"127.0.0.1:{port}", "DOZOR_RULES": rules},
    )
    log(f"single: docker-compose up -d (port {port})")
    try:
        # The documented command, as is: the images exist (built above), so nothing is built.
        compose(directory, env, "up", "-d")
        dozor = container(directory, env, "dozor")
        wait("single: Docker's health check (dozor healthcheck) to say healthy",
             lambda: health(dozor) == "healthy", 120)
        logs = compose(directory, env, "logs", "--no-color", "dozor", quiet=True)
        token = next((w for w in logs.split() if w.startswith("dzt_")), None)
        if not token:
            raise SystemExit("single: no first-start admin token in the log")
        api = Api(f"https://127.0.0.1:{port}")
        api.pin_ca()
        api.token = token
        events = [event(900_000 + i, "C:\\Windows\\System32\\whoami.exe" if i % 2 else "C:\\a.exe", "ci-single") for i in range(10)]
        status, body = api.request("POST", "/api/v1/ingest", ndjson(events), "application/x-ndjson")
        assert status == 202, (status, body)
        wait("single: 10 events stored", lambda: api.count("event.dataset:ci-single") == 10, 60)
        wait("single: the whoami alert",
             lambda: any(a["rule_title"].startswith("Whoami") for a in api.json("GET", "/api/v1/alerts")["alerts"]), 60)
        log("single: healthy, events stored and detected; restarting")
        compose(directory, env, "restart", "dozor")
        wait("single: healthy after restart", lambda: health(dozor) == "healthy", 120)
        assert api.count("event.dataset:ci-single") == 10, "events survive a restart"
        log("single: PASSED")
    except BaseException:
        dump_logs(directory, env)
        raise
    finally:
        down(directory, env)


# ------------------------------------------------------------------------------ scale


def test_scale(rules):
    directory = os.path.join(COMPOSE, "scale")
    ingest_port, api_port = free_port(), free_port()
    env = compose_env(
        f"dozorci-scale-{os.getpid()}",
        {
            "DOZOR_DB_PASSWORD": secrets.token_urlsafe(18),
            "DOZOR_INGEST_PORT": f"127.0.0.1:{ingest_port}",
            "DOZOR_API_PORT": f"127.0.0.1:{api_port}",
            "DOZOR_RULES": rules,
        },
    )
    log(f"scale: ./up.sh (ingest {ingest_port}, api {api_port})")
    try:
        run([os.path.join(directory, "up.sh")], env=env, timeout=600)
        api = Api(f"https://127.0.0.1:{api_port}")
        ingest = Api(f"https://127.0.0.1:{ingest_port}")
        wait("scale: the API through the load balancer", lambda: api.pin_ca() and api.ready(), 180)
        ingest.context = api.context
        wait("scale: ingest through the load balancer", ingest.ready, 120)
        token = compose(directory, env, "exec", "-T", "api", "dozor", "tokens", "create",
                        "--role", "admin", "--name", "compose-test", quiet=True).strip()
        assert token.startswith("dzt_"), token
        api.token = ingest.token = token

        # The agent container enrolled by itself and sends heartbeats (degraded, not online: in
        # a container without root some collectors fall back or wait, and its health says so).
        def heard_from():
            agents = api.json("GET", "/api/v1/agents")["agents"]
            heard_from.last = agents
            return next((a for a in agents if a["hostname"] == "compose-agent"
                         and a["status"] in ("online", "degraded")), None)
        heard_from.last = None
        try:
            agent = wait("scale: the agent to enroll and send heartbeats", heard_from, 180)
        except SystemExit:
            print(json.dumps(heard_from.last, indent=1)[:3000])
            raise
        log(f"scale: agent {agent['id']} {agent['status']}: {agent.get('health')}")
        wait("scale: events from the agent",
             lambda: api.count(f"agent.id:{agent['id']}") > 0, 120)
        log(f"scale: the agent's events stored")

        # EVTX through the load balancer → alerts.
        with open(os.path.join(SHARED, "datasets", "evtx-samples", "sysmon.evtx"), "rb") as f:
            evtx = f.read()
        status, body = ingest.request("POST", "/api/v1/ingest/evtx", evtx, "application/octet-stream", timeout=300)
        assert status in (200, 202), (status, body[:300])
        wait("scale: alerts from the uploaded EVTX",
             lambda: any(a["rule_title"].startswith("Sysmon process creation")
                         for a in api.json("GET", "/api/v1/alerts")["alerts"]), 120)
        log("scale: EVTX uploaded through the load balancer raised alerts")

        # A worker killed mid-stream: nothing lost, nothing doubled.
        batches, per_batch = 30, 200
        worker = container(directory, env, "worker-1")
        for b in range(batches):
            events = [event(b * per_batch + i,
                            "C:\\Windows\\System32\\whoami.exe" if i % 10 == 0 else "C:\\Windows\\notepad.exe",
                            "ci-crash") for i in range(per_batch)]
            status, body = ingest.request("POST", "/api/v1/ingest", ndjson(events), "application/x-ndjson")
            assert status == 202, (status, body[:300])
            if b == batches // 3:
                run(["docker", "kill", "--signal", "KILL", worker], quiet=True)
                log("scale: worker-1 killed (SIGKILL)")
            if b == batches // 2:
                compose(directory, env, "start", "worker-1", quiet=True)
                log("scale: worker-1 started again")
        total = batches * per_batch
        wait(f"scale: all {total} accepted events stored",
             lambda: api.count("event.dataset:ci-crash") >= total, 180)
        time.sleep(5)
        stored = api.count("event.dataset:ci-crash")
        assert stored == total, f"{stored} stored for {total} accepted (doubled?)"
        log(f"scale: {total} events through a worker kill, stored exactly once")
        log("scale: PASSED")
    except BaseException:
        dump_logs(directory, env)
        raise
    finally:
        down(directory, env)


def main():
    if os.geteuid() != 0:
        raise SystemExit("run as root (docker)")
    ensure_docker()
    remove_images()
    check_free_space()
    build_images()
    rules = tempfile.mkdtemp(prefix="dozor-compose-rules-")
    os.chmod(rules, 0o755)
    for name, text in RULES.items():
        with open(os.path.join(rules, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(rules, name), 0o644)
    try:
        only = os.environ.get("ONLY", "")
        if only in ("", "single"):
            test_single(rules)
        if only in ("", "scale"):
            test_scale(rules)
    finally:
        shutil.rmtree(rules, ignore_errors=True)
        if os.environ.get("KEEP") != "1":
            remove_images()
    log("deploy/compose: PASSED")


if __name__ == "__main__":
    main()
