"""SMTP test sink for rekey_notify::testing::SmtpSink (Debian's python3-aiosmtpd).

Stores every accepted message in a Maildir, like `aiosmtpd.handlers.Mailbox`, and answers some
recipients with errors so tests can see real relay refusals:
  reject-*@...    550 5.1.1 (permanent)
  tempfail-*@...  451 4.3.0 (transient)
and answers `slow<MS>-*@...` recipients only after MS milliseconds (one slow mail among fast ones).
Options make the whole relay slow or failing (a relay in trouble, for timing tests):
  --data-delay=SECONDS   wait before answering each message (the reply to DATA's final dot)
  --rcpt-delay=SECONDS   wait before answering each RCPT TO
  --rcpt-answer=temp     answer every RCPT TO with 451 4.3.0 (failing, temporary)
  --rcpt-answer=perm     answer every RCPT TO with 554 5.7.1 (failing, permanent)
  --login=USER:PASSWORD  require SMTP AUTH with these credentials (TLS modes: after STARTTLS)

usage: sink.py [OPTIONS] MAILDIR MODE [CERT KEY]   MODE: plain | starttls | smtps
Listens on a free 127.0.0.1 port, prints it on stdout once it accepts connections, and exits
when its stdin closes (the test process ended, however it ended).
"""

import asyncio
import logging
import os
import re
import socket
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink(Mailbox):
    def __init__(self, maildir, data_delay=0.0, rcpt_delay=0.0, rcpt_answer=None):
        super().__init__(maildir)
        self.data_delay = data_delay
        self.rcpt_delay = rcpt_delay
        self.rcpt_answer = rcpt_answer

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay > 0:
            await asyncio.sleep(self.rcpt_delay)
        if self.rcpt_answer == "temp":
            return "451 4.3.0 <%s>: relay busy, try again later (failing test sink)" % address
        if self.rcpt_answer == "perm":
            return "554 5.7.1 <%s>: relay refuses all mail (failing test sink)" % address
        local = address.split("@", 1)[0].lower()
        slow = re.match(r"slow(\d+)-", local)
        if slow:
            await asyncio.sleep(int(slow.group(1)) / 1000)
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: recipient rejected by the test sink" % address
        if local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later (test sink)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)
        return await super().handle_DATA(server, session, envelope)


async def main(options, maildir, mode, cert=None, key=None):
    handler = Sink(
        maildir,
        data_delay=float(options.get("data-delay", 0)),
        rcpt_delay=float(options.get("rcpt-delay", 0)),
        rcpt_answer=options.get("rcpt-answer"),
    )
    if handler.rcpt_answer not in (None, "temp", "perm"):
        raise SystemExit("--rcpt-answer must be temp or perm")
    context = None
    if mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    login = options.get("login")
    authenticator = None
    if login is not None:
        user, password = login.encode().split(b":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (user, password)
            return AuthResult(success=ok, handled=False)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)

    def factory():
        return SMTP(
            handler,
            hostname="sink.rekey.test",
            tls_context=context if mode == "starttls" else None,
            require_starttls=mode == "starttls",
            authenticator=authenticator,
            auth_required=authenticator is not None,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, sock=sock, ssl=context if mode == "smtps" else None
    )
    print(sock.getsockname()[1], flush=True)
    # Block a worker thread on stdin: EOF means the test process is gone.
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    options = dict(
        a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a
    )
    positional = [a for a in sys.argv[1:] if not a.startswith("--")]
    try:
        asyncio.run(main(options, *positional))
    except KeyboardInterrupt:
        pass
    os._exit(0)
