#!/usr/bin/env python3
"""smtp_sink.py: a real SMTP server (aiosmtpd) that stores every message it accepts.

Run by scripts/with-test-smtp.sh (make test: STARTTLS, implicit TLS and AUTH on a
throwaway certificate) and scripts/stack.sh (make up: plain, no AUTH, into .stack/mail),
with the python of the aiosmtpd venv (scripts/lib/install.sh: install_find_aiosmtpd).
Only aiosmtpd and the standard library.

  smtp_sink.py --port P [--host 127.0.0.1] [--tls-port P2] --dir DIR
               [--cert C --key K] [--auth-user U --auth-password W]
               [--size-limit BYTES]

  --port        plain listener; with --cert it offers STARTTLS (not required)
  --tls-port    implicit TLS listener (smtps); needs --cert/--key
  --auth-user/--auth-password
                AUTH PLAIN and LOGIN; MAIL FROM without it gets 530. With --cert, AUTH
                is offered only on an encrypted session (after STARTTLS, or on the
                implicit TLS listener); without --cert, on the plain connection too.
  --size-limit  the SIZE advertised and enforced (552 beyond), default 10485760
  SMTPUTF8 and 8BITMIME are offered.

Each accepted message becomes DIR/<monotonic-ns>-<counter>.eml (the bytes of DATA as
received, dot-stuffing undone) and then DIR/<same>.json, each written to a hidden
temporary file and renamed, so a file that exists is complete; the .json is renamed last,
so when it exists its .eml does too. Both numbers are zero-padded (20 and 6 digits), so
the names sort in the order of arrival. The .json:
  {"mailFrom": str, "rcptTos": [str], "smtputf8": bool, "tls": bool, "authUser": str|null}

Faults, chosen by the local part of a recipient (case-insensitive prefix), so that a test
provokes them with nothing but the address it sends to. "Deliveries" to an address are
counted per exact address (as given in RCPT TO) at the end of DATA, for every message
that names it, whatever the answer was; the counts live as long as the process.
  reject-...      RCPT TO answers 550 5.1.1 no such user (never counted, never stored)
  tempfail<N>-... the end of DATA answers 451 4.3.0 try again later for the first N
                  deliveries to that address, then the message is accepted
  close-...       at the end of DATA the connection is dropped without an answer on the
                  first delivery to that address; later ones are accepted
  busy<N>-...     the end of DATA answers 421 4.3.2 service not available, closing and
                  the server closes the connection, for the first N deliveries
A message with several such recipients: close wins over busy, busy over tempfail; a
message not accepted is not stored.

One line per event on stderr. SIGTERM or SIGINT: the listeners close, open connections
are dropped, exit 0.
"""

import argparse
import asyncio
import hmac
import json
import logging
import os
import re
import signal
import ssl
import sys
import tempfile
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp-sink")

TEMPFAIL = re.compile(r"^tempfail([0-9]+)-")
BUSY = re.compile(r"^busy([0-9]+)-")


def local_part(address):
    return address.rpartition("@")[0].lower() if "@" in address else address.lower()


def clean(text):
    """A str that encodes as UTF-8: aiosmtpd keeps non-UTF-8 bytes of a command as
    surrogate escapes, which json cannot write as UTF-8."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Store:
    """Writes the accepted messages into one folder."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = 0
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def _write(self, name, data):
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.directory, name))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def save(self, content, meta):
        # Monotonic: unique and ordered within a boot; the existence check keeps an older
        # file (of an earlier boot, say) from being overwritten all the same.
        while True:
            self.counter += 1
            base = f"{time.monotonic_ns():020d}-{self.counter:06d}"
            if not os.path.exists(os.path.join(self.directory, base + ".eml")):
                break
        self._write(base + ".eml", content)
        self._write(base + ".json", (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        return base


class Handler:
    """aiosmtpd's hooks: the AUTH rule, the faults, storing."""

    def __init__(self, store, auth_user):
        self.store = store
        self.auth_user = auth_user
        self.deliveries = {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # aiosmtpd leaves setting host_name to a handle_EHLO of the handler.
        session.host_name = hostname
        if self.auth_user is None:
            # No AUTH to offer: aiosmtpd would advertise its mechanisms anyway (and fail
            # every attempt).
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        log.info("%s EHLO %s%s", peer(session), clean(hostname), " (tls)" if is_tls(server) else "")
        return responses

    # Called by aiosmtpd without await once the STARTTLS handshake is done.
    def handle_STARTTLS(self, server, session, envelope):
        log.info("%s STARTTLS done (%s)", peer(session), server.transport.get_extra_info("cipher"))
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # aiosmtpd's own auth_required would also refuse AUTH on the implicit TLS listener
        # (it counts only STARTTLS as encryption); the rule is therefore here.
        if self.auth_user is not None and not session.authenticated:
            log.info("%s MAIL FROM:<%s> refused: not authenticated", peer(session), clean(address))
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        log.info("%s MAIL FROM:<%s> %s", peer(session), clean(address), " ".join(mail_options))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if local_part(address).startswith("reject-"):
            log.info("%s RCPT TO:<%s> rejected (fault: reject-)", peer(session), clean(address))
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        log.info("%s RCPT TO:<%s>", peer(session), clean(address))
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        close = busy = tempfail = None
        for address in envelope.rcpt_tos:
            count = self.deliveries.get(address, 0) + 1
            self.deliveries[address] = count
            local = local_part(address)
            if local.startswith("close-") and count == 1:
                close = close or address
            m = BUSY.match(local)
            if m and count <= int(m.group(1)):
                busy = busy or f"{address} (delivery {count} of the first {m.group(1)})"
            m = TEMPFAIL.match(local)
            if m and count <= int(m.group(1)):
                tempfail = tempfail or f"{address} (delivery {count} of the first {m.group(1)})"
        size = len(envelope.original_content)
        if close:
            log.info("%s DATA %d bytes: dropping the connection without an answer (fault: close- %s)",
                     peer(session), size, clean(close))
            # abort(): no answer, no TLS close_notify, as if the server died. aiosmtpd's
            # connection_lost then cancels this coroutine, which ends the session; the
            # sleep is only a bound.
            server.transport.abort()
            await asyncio.sleep(30)
            return "421 4.3.0 closing"
        if busy:
            log.info("%s DATA %d bytes: 421 and closing (fault: busy %s)", peer(session), size, clean(busy))
            await server.push("421 4.3.2 service not available, closing")
            server.transport.close()
            await asyncio.sleep(30)
            return "421 4.3.2 service not available, closing"
        if tempfail:
            log.info("%s DATA %d bytes: 451 (fault: tempfail %s)", peer(session), size, clean(tempfail))
            return "451 4.3.0 try again later"
        meta = {
            "mailFrom": clean(envelope.mail_from),
            "rcptTos": [clean(r) for r in envelope.rcpt_tos],
            "smtputf8": bool(envelope.smtp_utf8),
            "tls": is_tls(server),
            "authUser": session.auth_data if session.authenticated else None,
        }
        base = self.store.save(envelope.original_content, meta)
        log.info("%s DATA %d bytes from <%s> to %s: stored %s.eml", peer(session), size,
                 meta["mailFrom"], ", ".join(f"<{r}>" for r in meta["rcptTos"]), base)
        return f"250 2.0.0 OK: queued as {base}"


def peer(session):
    p = session.peer
    return f"{p[0]}:{p[1]}" if isinstance(p, tuple) and len(p) >= 2 else str(p)


def is_tls(server):
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP, with a log line per connection and a registry of the open ones
    (closed at shutdown)."""

    def __init__(self, handler, connections, listener, **kwargs):
        super().__init__(handler, **kwargs)
        self.connections = connections
        self.listener = listener

    def connection_made(self, transport):
        # Called again after STARTTLS, on the TLS transport: not a new connection.
        new = self._original_transport is None
        super().connection_made(transport)
        if new:
            self.connections.add(self)
            log.info("%s connected (%s)", peer(self.session), self.listener)

    def connection_lost(self, error):
        if self in self.connections:
            self.connections.discard(self)
            log.info("%s disconnected%s", peer(self.session), f" ({error})" if error else "")
        super().connection_lost(error)


def authenticator(user, password):
    user_b, password_b = user.encode("utf-8"), password.encode("utf-8")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, user_b)
              and hmac.compare_digest(auth_data.password, password_b))
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else "?"
        log.info("%s AUTH %s as %r: %s", peer(session), mechanism, login, "ok" if ok else "refused")
        if ok:
            return AuthResult(success=True, auth_data=user)
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=False, handled=False)

    return check


class QuietAiosmtpd(logging.Filter):
    """aiosmtpd warns at every AUTH that Session.login_data is deprecated (it sets it
    itself); nothing to act on here."""

    def filter(self, record):
        return "login_data is deprecated" not in record.getMessage()


def parse_args(argv):
    p = argparse.ArgumentParser(description="SMTP server (aiosmtpd) that stores what it accepts")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-port", type=int)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--size-limit", type=int, default=10485760)
    a = p.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")
    if a.tls_port is not None and not a.cert:
        p.error("--tls-port needs --cert and --key")
    if (a.auth_user is None) != (a.auth_password is None):
        p.error("--auth-user and --auth-password go together")
    if a.size_limit <= 0:
        p.error("--size-limit must be positive")
    return a


async def serve(a):
    loop = asyncio.get_running_loop()
    handler = Handler(Store(a.dir), a.auth_user)
    auth = authenticator(a.auth_user, a.auth_password) if a.auth_user is not None else None
    tls = None
    if a.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.cert, a.key)
    connections = set()

    def factory(listener, implicit):
        return lambda: SinkSMTP(
            handler, connections, listener,
            hostname="localhost",  # not socket.getfqdn(): a DNS lookup at every connection
            data_size_limit=a.size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,  # the raw bytes are stored
            # STARTTLS only on the plain listener: an implicit TLS session already is.
            tls_context=None if implicit else tls,
            require_starttls=False,
            # Encryption before AUTH when there is a certificate (on the implicit TLS
            # listener everything is encrypted); without one, AUTH on plain text.
            auth_require_tls=bool(tls) and not implicit,
            auth_required=False,  # enforced in handle_MAIL (see there)
            authenticator=auth,
            loop=loop,
        )

    servers = []
    # The implicit TLS listener first: once the plain one greets (what the scripts wait
    # for), both take connections.
    if a.tls_port is not None:
        servers.append(await loop.create_server(factory("implicit TLS", True), a.host, a.tls_port, ssl=tls))
        log.info("listening on %s:%d (implicit TLS)", a.host, a.tls_port)
    servers.append(await loop.create_server(factory("plain", False), a.host, a.port))
    log.info("listening on %s:%d (%s%s), storing into %s", a.host, a.port,
             "STARTTLS offered" if tls else "no TLS",
             f", AUTH as {a.auth_user}" if a.auth_user is not None else ", no AUTH", a.dir)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping (%d open connection(s))", len(connections))
    for server in servers:
        server.close()
    for conn in list(connections):
        if conn.transport is not None:
            conn.transport.abort()
    for server in servers:
        await server.wait_closed()
    # Let connection_lost callbacks run before the loop goes.
    await asyncio.sleep(0.05)


def main(argv):
    a = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s smtp-sink: %(message)s")
    log.setLevel(logging.INFO)
    for h in logging.getLogger().handlers:
        h.addFilter(QuietAiosmtpd())
    try:
        asyncio.run(serve(a))
    except OSError as e:
        log.error("cannot listen: %s", e)
        return 1
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
