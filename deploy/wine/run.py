#!/usr/bin/env python3
"""The Windows agent, run: dozor-agent.exe (x86_64-pc-windows-gnu) under Debian's Wine against a
real Linux `dozor server` on 127.0.0.1.

What it does and checks, in order:
  1. `dozor-agent.exe print-config` prints the reference (the binary starts at all);
  2. `enroll` with a token and the pinned CA file;
  3. `run` for a bounded time: heartbeats arrive (the agent is listed with os_type windows),
     events from the polling collectors arrive, and a collector Wine cannot serve (the Event
     Log subscription: EvtSubscribe is missing or its channels do not exist) is reported as
     failed or degraded in the agent's health while the agent keeps running;
  4. the agent stops on request.
Then it prints exactly what ran and what did not (the collectors' states as the server saw
them).

Wine 8 (Debian 12) lacks ProcessPrng in bcryptprimitives.dll, which Rust's standard library
needs to start; processprng.c, built here with mingw, stands in for it next to the .exe. That
shim is test-only and never shipped.

Environment: DOZOR_BIN (the Linux `dozor`), DOZOR_AGENT_EXE (the Windows agent), RUN_SECS (40).
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "..", "target"))
DOZOR = os.environ.get("DOZOR_BIN", os.path.join(TARGET, "debug", "dozor"))
AGENT_EXE = os.environ.get(
    "DOZOR_AGENT_EXE", os.path.join(TARGET, "x86_64-pc-windows-gnu", "debug", "dozor-agent.exe")
)
RUN_SECS = int(os.environ.get("RUN_SECS", "40"))
STARTED = time.time()


def log(message):
    print(f"[{time.time() - STARTED:6.1f}s] {message}", flush=True)


def fail(message):
    print(f"FAILED: {message}", flush=True)
    sys.exit(1)


def start_server(data):
    """`dozor server` on an ephemeral loopback port; returns (process, url, admin token)."""
    process = subprocess.Popen(
        [DOZOR, "server", "--data-dir", data, "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DOZOR_LOG": "warn", "DOZOR_AGENT_HEARTBEAT_INTERVAL": "5s"},
    )
    token, deadline = None, time.time() + 60
    for line in process.stderr:
        token = token or next((w for w in line.split() if w.startswith("dzt_")), None)
        if line.startswith("dozor server listening on "):
            url = line.split()[-1]
            # Keep draining stderr so the server never blocks on a full pipe.
            log_file = open(os.path.join(data, "..", "server.log"), "w")
            subprocess.Popen(["cat"], stdin=process.stderr, stdout=log_file)
            return process, url, token
        if time.time() > deadline:
            break
    process.kill()
    fail("the server did not start")


def api(url, token, context, path):
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        return json.loads(answer.read())


def wine_path(path):
    return "Z:" + path.replace("/", "\\")


def main():
    for tool in ("wine", "x86_64-w64-mingw32-gcc"):
        if shutil.which(tool) is None:
            fail(f"{tool} is needed (apt-get install wine64 gcc-mingw-w64-x86-64)")
    for f in (DOZOR, AGENT_EXE):
        if not os.path.exists(f):
            fail(f"{f}: not built")
    work = tempfile.mkdtemp(prefix="dozor-wine-")
    server = agent = None
    try:
        # The agent and its ProcessPrng stand-in side by side (Windows looks next to the .exe first).
        bin_dir = os.path.join(work, "bin")
        os.makedirs(bin_dir)
        shutil.copy(AGENT_EXE, os.path.join(bin_dir, "dozor-agent.exe"))
        subprocess.run(
            ["x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", os.path.join(bin_dir, "bcryptprimitives.dll"),
             os.path.join(HERE, "processprng.c"), "-ladvapi32"],
            check=True,
        )
        env = {
            **os.environ,
            "WINEPREFIX": os.path.join(work, "prefix"),
            "WINEDEBUG": "-all",
            "WINEDLLOVERRIDES": "bcryptprimitives=n,b;mscoree,mshtml=",
            "DOZOR_AGENT_LOG": "info",
        }
        exe = os.path.join(bin_dir, "dozor-agent.exe")
        state = wine_path(os.path.join(work, "agent-state"))
        log("wineboot (a fresh prefix)")
        subprocess.run(["wineboot", "-i"], env=env, capture_output=True, timeout=300)

        reference = subprocess.run(["wine", exe, "print-config"], env=env, capture_output=True, text=True, timeout=120)
        if reference.returncode != 0 or "[transport]" not in reference.stdout:
            fail(f"print-config under Wine: exit {reference.returncode}\n{reference.stdout[-2000:]}{reference.stderr[-2000:]}")
        log(f"print-config: ran ({len(reference.stdout.splitlines())} lines of reference)")

        data = os.path.join(work, "data")
        server, url, admin = start_server(data)
        ca_file = os.path.join(data, "pki", "ca.crt.pem")
        context = ssl.create_default_context(cafile=ca_file)
        enroll_token = subprocess.run(
            [DOZOR, "tokens", "create", "--data-dir", data], capture_output=True, text=True, check=True
        ).stdout.strip()

        enrolled = subprocess.run(
            ["wine", exe, "--state-dir", state, "enroll", "--server", url, "--token", enroll_token,
             "--ca-file", wine_path(ca_file)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        if enrolled.returncode != 0:
            fail(f"enroll under Wine: exit {enrolled.returncode}\n{enrolled.stdout}{enrolled.stderr[-3000:]}")
        log(f"enroll: {enrolled.stdout.strip()}")

        agent_log = open(os.path.join(work, "agent.log"), "w")
        agent = subprocess.Popen(["wine", exe, "--state-dir", state, "run"], env=env,
                                 stdout=agent_log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + RUN_SECS
        seen = None
        events, kinds = 0, {}
        while time.time() < deadline:
            time.sleep(3)
            # A process started in the same Wine prefix, for the process collector to see.
            subprocess.run(["wine", "cmd.exe", "/c", "ping -n 2 127.0.0.1 >NUL"], env=env,
                           capture_output=True, timeout=60)
            if agent.poll() is not None:
                fail(f"the agent exited ({agent.returncode}) under Wine:\n" + open(agent_log.name).read()[-3000:])
            agents = api(url, admin, context, "/api/v1/agents")["agents"]
            seen = next((a for a in agents if a.get("os_type") == "windows"), None)
            if seen:
                page = api(url, admin, context, f"/api/v1/events?agent={seen['id']}&limit=1000")
                events = len(page["events"])
                kinds = {}
                for e in page["events"]:
                    doc = e.get("doc") or {}
                    for category in ((doc.get("event") or {}).get("category") or ["?"]):
                        kinds[category] = kinds.get(category, 0) + 1
        if not seen:
            fail("no heartbeat from the Windows agent reached the server\n" + open(agent_log.name).read()[-3000:])
        detail = api(url, admin, context, f"/api/v1/agents/{seen['id']}")
        health = detail.get("health") or []
        collectors = (detail.get("last_heartbeat") or {}).get("collectors") or {}
        log(f"run: heartbeats arrive — status {detail['status']}, {events} events stored, by category {kinds}")
        for name, collector in sorted(collectors.items()):
            log(f"  collector {name}: {collector.get('state')}" + (f" ({collector['message']})" if collector.get("message") else ""))
        log(f"  health: {health}")
        if not kinds.get("process"):
            fail(f"no process events from the Windows agent (events by category: {kinds})")
        if not any(p.startswith("eventlog") for p in health):
            fail(f"the Event Log collector's failure under Wine is not in the agent's health: {health}")
        if agent.poll() is not None:
            fail("the agent stopped")
        log("the agent keeps running with the Event Log collector reported in its health")
        log("Windows agent under Wine: PASSED")
    finally:
        if agent and agent.poll() is None:
            os.killpg(agent.pid, signal.SIGTERM)
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
        subprocess.run(["wineserver", "-k"], env={**os.environ, "WINEPREFIX": os.path.join(work, "prefix")},
                       capture_output=True)
        if server:
            server.terminate()
            server.wait(timeout=20)
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")


if __name__ == "__main__":
    main()
