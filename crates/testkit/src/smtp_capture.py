"""SMTP capture server for postdesk-testkit (crates/testkit/src/smtp.rs).

Usage: python3 smtp_capture.py DIR

Listens on 127.0.0.1 on a port picked by the kernel and writes it to DIR/port (atomically).
For the N-th accepted message it writes DIR/N.eml (exactly the DATA bytes after
de-dot-stuffing, i.e. `envelope.original_content`) and then DIR/N.json
({"mail_from": ..., "rcpt_tos": [...]}), each through a temp file and a rename, so a
reader can take N.json as "N is complete".

If DIR/reject exists and is not empty, DATA is answered with its first line (for example
"550 5.7.1 Rejected for test") and nothing is stored. AUTH (PLAIN/LOGIN) is offered
without TLS and accepts any credentials; the MAIL FROM parameter AUTH=<...> (RFC 4954, sent
by relays such as Dovecot submission) is accepted and ignored. Exits when stdin reaches EOF (the test process
went away) or on SIGTERM/SIGINT.
"""

import asyncio
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP, AuthResult


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CaptureHandler:
    def __init__(self, directory):
        self.dir = directory
        self.count = 0

    def reject_line(self):
        try:
            with open(os.path.join(self.dir, "reject"), "r", encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        lines = text.strip().splitlines()
        return lines[0].strip() if lines else None

    async def handle_DATA(self, server, session, envelope):
        reject = self.reject_line()
        if reject:
            return reject
        self.count += 1
        n = self.count
        write_atomic(os.path.join(self.dir, f"{n}.eml"), envelope.original_content)
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""  # the null sender
        meta = {"mail_from": mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
        write_atomic(
            os.path.join(self.dir, f"{n}.json"),
            json.dumps(meta, ensure_ascii=False).encode("utf-8"),
        )
        return f"250 2.0.0 OK captured as message {n}"


class CaptureSMTP(SMTP):
    """aiosmtpd's SMTP, plus the AUTH=<mailbox> MAIL parameter that RFC 4954 makes every
    server offering AUTH accept (aiosmtpd refuses it with 555)."""

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None:
            result.pop("AUTH", None)
        return result


def accept_any_auth(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


async def main(directory):
    loop = asyncio.get_running_loop()
    handler = CaptureHandler(directory)

    def factory():
        return CaptureSMTP(
            handler,
            hostname="postdesk-testkit",
            ident="postdesk-testkit SMTP capture",
            decode_data=False,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=accept_any_auth,
        )

    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    write_atomic(os.path.join(directory, "port"), str(port).encode())
    print(f"smtp_capture listening on 127.0.0.1:{port}", flush=True)

    stop = loop.create_future()

    def finish():
        if not stop.done():
            stop.set_result(None)

    def on_stdin():
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sys.stdin.fileno())
            finish()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
