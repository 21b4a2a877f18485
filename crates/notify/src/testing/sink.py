"""SMTP test sink for rekey_notify::testing::SmtpSink (Debian's python3-aiosmtpd).

Stores every accepted message in a Maildir, like `aiosmtpd.handlers.Mailbox`, and answers some
recipients with errors so tests can see real relay refusals:
  reject-*@...    550 5.1.1 (permanent)
  tempfail-*@...  451 4.3.0 (transient)

usage: sink.py MAILDIR MODE [CERT KEY]   MODE: plain | starttls | smtps
Listens on a free 127.0.0.1 port, prints it on stdout once it accepts connections, and exits
when its stdin closes (the test process ended, however it ended).
"""

import asyncio
import logging
import os
import socket
import ssl
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: recipient rejected by the test sink" % address
        if local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later (test sink)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def main(maildir, mode, cert=None, key=None):
    handler = Sink(maildir)
    context = None
    if mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
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
    try:
        asyncio.run(main(*sys.argv[1:]))
    except KeyboardInterrupt:
        pass
    os._exit(0)
