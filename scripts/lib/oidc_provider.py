#!/usr/bin/env python3
"""A small OpenID provider for trying and testing social sign-in: the browser tests
(tests/web/run.sh) and `scripts/social-demo.sh start` run it. Standard library and the
openssl command only (which signs the tokens), as the scripts around it.

  oidc_provider.py --port PORT --client-id ID [--key KEY.pem] [--redirect-uri URI]...

It serves, on http://127.0.0.1:PORT (which is also its issuer, exactly):
  GET  /.well-known/openid-configuration   discovery: issuer, authorization_endpoint,
                                           jwks_uri, response type id_token, RS256
  GET  /jwks (and /jwks.json)              the public key as a JWK set; kid is the key's
                                           RFC 7638 thumbprint (the same for the same key)
  GET  /authorize                          the implicit flow's sign-in page (no script):
                                           any e-mail and name, "e-mail verified" (ticked),
                                           Continue or Cancel; no password, by design
  POST /authorize                          302 to redirect_uri#id_token=...&state=... (or
                                           #error=access_denied&state=... on Cancel)

/authorize takes response_type=id_token, client_id (the configured one), redirect_uri (an
absolute http(s) URL; one of --redirect-uri when any is given, as a real provider allows
only registered ones), a scope with openid, a nonce, and response_mode fragment (or none);
anything else is a 400 page, never a redirect. The ID token (RS256, 10 minutes) has iss,
aud (the client id), sub (derived from the e-mail: the same person each time), email,
email_verified, name (when given), nonce, iat and exp, and kid in its header.

--key: the RSA private key (PEM); made (RSA 2048) when the file does not exist. Prints
"oidc-provider: ready on ISSUER" on stderr once it listens; logs requests there too (never
a token). SIGTERM stops it.
"""

import argparse
import base64
import hashlib
import html
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

TOKEN_LIFETIME = 600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    result = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"oidc-provider: openssl {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def ensure_key(path):
    if not os.path.exists(path):
        old = os.umask(0o077)
        try:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        finally:
            os.umask(old)


def public_jwk(path):
    """n and e as openssl prints them, base64url without padding (RFC 7518 6.3.1); kid the
    RFC 7638 thumbprint."""
    modulus = openssl("rsa", "-in", path, "-noout", "-modulus").decode().strip().removeprefix("Modulus=")
    exponent = re.search(r"^(?:publicExponent|Exponent): (\d+)", openssl("rsa", "-in", path, "-noout", "-text").decode(), re.M)
    if not re.fullmatch(r"[0-9A-Fa-f]+", modulus) or not exponent:
        raise SystemExit(f"oidc-provider: unexpected openssl output for {path}")

    def unsigned(value):
        return value.to_bytes((value.bit_length() + 7) // 8, "big")

    n, e = b64url(unsigned(int(modulus, 16))), b64url(unsigned(int(exponent.group(1))))
    thumbprint = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
    kid = b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}


def subject(email):
    """The same person for the same e-mail (case and spaces aside), as a real provider's
    stable subject would be (scripts/social-demo.sh's `token` derives it the same way)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def id_token(config, jwk, request, email, name, verified):
    now = int(time.time())
    claims = {"iss": config.issuer, "aud": config.client_id, "sub": subject(email), "email": email,
              "email_verified": verified, "nonce": request["nonce"], "iat": now, "exp": now + TOKEN_LIFETIME}
    if name:
        claims["name"] = name
    header = {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    segments = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    # JWS RS256: RSASSA-PKCS1-v1_5 with SHA-256 over "header.payload".
    return segments + "." + b64url(openssl("dgst", "-sha256", "-sign", config.key, "-binary", data=segments.encode()))


def request_problem(config, request):
    """Why an authorization request is refused (None when it is fine)."""
    if request.get("client_id") != config.client_id:
        return "unknown client_id"
    if request.get("response_type") != "id_token":
        return "response_type must be id_token (the implicit flow)"
    if request.get("response_mode", "fragment") != "fragment":
        return "response_mode must be fragment"
    if "openid" not in request.get("scope", "").split():
        return "scope must include openid"
    if not request.get("nonce"):
        return "nonce is required"
    uri = urllib.parse.urlsplit(request.get("redirect_uri", ""))
    if uri.scheme not in ("http", "https") or not uri.netloc or uri.fragment:
        return "redirect_uri must be an absolute http(s) URL without a fragment"
    if config.redirect_uris and request["redirect_uri"] not in config.redirect_uris:
        return "redirect_uri is not registered for this client"
    return None


# What the sign-in page carries from the request to the POST.
PASSED_ON = ("response_type", "client_id", "redirect_uri", "scope", "nonce", "state", "response_mode")
STYLE = ("body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}"
         "label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=text]{width:100%;padding:.4rem;box-sizing:border-box}"
         ".check{display:flex;gap:.5rem;align-items:center}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}")


def page(title, body):
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{STYLE}</style></head>'
            f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>")


def sign_in_page(config, request):
    hidden = "".join(f'<input type="hidden" name="{key}" value="{html.escape(request[key])}">' for key in PASSED_ON if key in request)
    return page("Sign in to the test provider", (
        f"<p>{html.escape(config.client_id)} asks who you are. Any address will do: this provider is for trying and testing.</p>"
        f'<form method="post" action="/authorize">{hidden}'
        '<label for="email">E-mail</label><input id="email" name="email" type="email" required autocomplete="email">'
        '<label for="name">Name</label><input id="name" name="name" type="text" autocomplete="name">'
        '<p class="check"><input id="verified" name="email_verified" type="checkbox" value="true" checked>'
        '<label for="verified">E-mail verified</label></p>'
        '<button type="submit" name="action" value="continue">Continue</button>'
        '<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></form>'))


def make_handler(config, jwk):
    discovery = json.dumps({
        "issuer": config.issuer,
        "authorization_endpoint": f"{config.issuer}/authorize",
        "jwks_uri": f"{config.issuer}/jwks",
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["fragment"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": ["iss", "aud", "sub", "iat", "exp", "nonce", "email", "email_verified", "name"],
    }).encode()
    jwks = json.dumps({"keys": [jwk]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        # As real providers answer (keep-alive; every response has a Content-Length).
        protocol_version = "HTTP/1.1"

        def send(self, status, body, content_type, headers=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def html(self, status, text):
            self.send(status, text.encode(), "text/html; charset=utf-8", [("Cache-Control", "no-store")])

        def refuse(self, reason):
            self.html(400, page("This sign-in request is refused", f"<p>{html.escape(reason)}.</p>"))

        def do_GET(self):
            path, _, query = self.path.partition("?")
            if path == "/.well-known/openid-configuration":
                self.send(200, discovery, "application/json", [("Cache-Control", "public, max-age=300")])
            elif path in ("/jwks", "/jwks.json"):
                self.send(200, jwks, "application/json", [("Cache-Control", "public, max-age=300")])
            elif path == "/authorize":
                request = dict(urllib.parse.parse_qsl(query))
                problem = request_problem(config, request)
                if problem:
                    self.refuse(problem)
                else:
                    self.html(200, sign_in_page(config, request))
            else:
                self.send(404, b"not found\n", "text/plain")

        def do_POST(self):
            if self.path != "/authorize":
                self.send(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(errors="replace")))
            problem = request_problem(config, form)
            if problem:
                self.refuse(problem)
                return
            if form.get("action") == "cancel":
                reply = {"error": "access_denied", "error_description": "The person cancelled the sign-in."}
            else:
                email = form.get("email", "").strip()
                if "@" not in email:
                    self.refuse("an e-mail address is required")
                    return
                token = id_token(config, jwk, form, email, form.get("name", "").strip(), form.get("email_verified") == "true")
                reply = {"id_token": token}
            if "state" in form:
                reply["state"] = form["state"]
            location = form["redirect_uri"] + "#" + urllib.parse.urlencode(reply)
            self.send(302, b"", "text/plain", [("Location", location), ("Cache-Control", "no-store")])

        def log_message(self, format, *values):
            # The request line only: a token leaves in the Location header, never in a log.
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), format % values))
            sys.stderr.flush()

    return Handler


def main():
    parser = argparse.ArgumentParser(description="A small OpenID provider (implicit flow, RS256) for tests and demos.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--key", help="RSA private key (PEM), made when missing (default: key.pem in the current folder)", default="key.pem")
    parser.add_argument("--redirect-uri", action="append", dest="redirect_uris", default=[],
                        help="a registered redirect URI (repeatable); without any, every http(s) URL is allowed")
    config = parser.parse_args()
    config.issuer = f"http://127.0.0.1:{config.port}"
    ensure_key(config.key)
    jwk = public_jwk(config.key)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", config.port), make_handler(config, jwk))
    sys.stderr.write(f"oidc-provider: ready on {config.issuer} (client {config.client_id}, kid {jwk['kid']})\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
