"""A throwaway SMTP server for dozor-notify's e-mail tests (aiosmtpd).

usage: smtp_server.py MODE OUTDIR [CERT KEY] [USER PASSWORD]
MODE: plain (no TLS offered), starttls (STARTTLS offered and required), tls (implicit TLS).
Binds 127.0.0.1 on an ephemeral port and prints it on stdout. Every accepted message is
written to OUTDIR/<n>.json. Exits when stdin closes (the test process died or dropped it).
"""
import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import warnings

warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

mode, outdir = sys.argv[1], sys.argv[2]
cert = key = user = password = None
rest = sys.argv[3:]
if mode in ("starttls", "tls"):
    cert, key, rest = rest[0], rest[1], rest[2:]
if len(rest) == 2:
    user, password = rest

context = None
if cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": mode == "tls" or session.ssl is not None,
            "login": session.auth_data if session.authenticated else None,
        }
        tmp = os.path.join(outdir, "%d.tmp" % self.count)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(outdir, "%d.json" % self.count))
        return "250 2.0.0 queued as test-%d" % self.count


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)


handler = Handler()


def factory():
    kwargs = dict(hostname="dozor-test-smtp")
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if user is not None:
        kwargs.update(authenticator=authenticator, auth_required=True)
        if mode == "tls":
            # Implicit TLS is encrypted from the start; aiosmtpd only knows about STARTTLS.
            kwargs.update(auth_require_tls=False)
    return SMTP(handler, **kwargs)


def watch_stdin():
    sys.stdin.read()
    os._exit(0)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=context if mode == "tls" else None
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=watch_stdin, daemon=True).start()
    await asyncio.Event().wait()


asyncio.run(main())
