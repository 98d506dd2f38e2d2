#!/usr/bin/env python3
"""The web app in a real browser: each area's journey as a person clicks it, in headless
Chromium driven by Selenium, against the end-to-end stack's gateway. Run by tests/web/run.sh
(which finds the browser, the driver and a python with selenium, and starts the second
gateway the recordings journey needs); see there for the environment.

Every journey ends by reading the browser's console: any error fails it (except the API
errors the journey provokes on purpose, each named), and so does any report of the
Content-Security-Policy. Screenshots of the main pages go to $WEB_SCREENSHOTS (default .stack/screenshots/);
the README shows one of them, copied to docs/.

Journeys run in parallel (WEB_TEST_JOBS, default 2), each with its own browser(s); waits
are WebDriverWait conditions, never fixed sleeps.
"""

import base64
import concurrent.futures
import email
import email.policy
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
import zlib

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException, NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATEWAY = os.environ["E2E_GATEWAY_URL"]
RECORDING_GATEWAY = os.environ.get("WEB_RECORDING_GATEWAY_URL", GATEWAY)
RECORDING_GATEWAY_LOG = os.environ.get("WEB_RECORDING_GATEWAY_LOG", "")
OIDC = os.environ.get("WEB_OIDC_URL", "")  # the test OpenID provider (scripts/lib/oidc_provider.py)
WAIT = float(os.environ.get("WEB_TEST_WAIT", "20"))
SHOTS = os.environ.get("WEB_SCREENSHOTS") or os.path.join(ROOT, ".stack", "screenshots")
FILES = tempfile.mkdtemp(prefix="test-web-files.")
PASSWORD = "correct horse battery"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

JOURNEYS = []


def journey(fn):
    JOURNEYS.append(fn)
    return fn


class Failure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


# --- The API, for what a journey needs around it (other users, votes, posts) ------------

def api(method, path, body=None, token=None, base=GATEWAY):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw and "json" in response.headers.get("Content-Type", "") else raw
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw and "json" in error.headers.get("Content-Type", "") else raw


def new_email(tag):
    return f"web-{tag}-{uuid.uuid4().hex[:10]}@example.com"


def signup(name, tag):
    address = new_email(tag)
    status, _, session = api("POST", "/auth/signup", {"email": address, "password": PASSWORD, "name": name})
    check(status == 201, f"sign-up of {address}: {status} {session}")
    return {"email": address, "name": name, "token": session["accessToken"], "id": session["user"]["id"]}


# --- Mail: what the stack's SMTP server received (scripts/with-test-smtp.sh) ------------

_used_tokens = set()
_mail_lock = threading.Lock()


def mail_link(address, route):
    """The path of the newest unused /#/<route>?token=... link sent to address."""
    folder = os.environ["TEST_SMTP_DIR"]
    pattern = re.compile(r"/#/" + route + r"\?token=([A-Za-z0-9_-]+)")

    def find():
        for name in sorted(os.listdir(folder), reverse=True):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(folder, name)) as f:
                if address.lower() not in [r.lower() for r in json.load(f)["rcptTos"]]:
                    continue
            with open(os.path.join(folder, name[:-5] + ".eml"), "rb") as f:
                message = email.message_from_binary_file(f, policy=email.policy.default)
            text = message.get_body(("plain",)).get_content()
            match = pattern.search(text)
            with _mail_lock:
                if match and match.group(1) not in _used_tokens:
                    _used_tokens.add(match.group(1))
                    return f"/#/{route}?token={match.group(1)}"
        return None

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        link = find()
        if link:
            return link
        time.sleep(0.1)  # polling the mail folder, not waiting for time to pass
    raise Failure(f"no {route} link arrived for {address} within {WAIT} s")


# --- Files to upload ----------------------------------------------------------------------

def png_file(name, width=480, height=320, tint=(79, 70, 229)):
    """A gradient PNG (zlib and a CRC are all PNG needs)."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            t = x / width
            row += bytes((int(tint[0] * (1 - t) + 250 * t), int(tint[1] * (1 - t) + 180 * t * (y / height) + 60 * t),
                          int(tint[2] * (1 - y / height) + 120 * (y / height))))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))
    path = os.path.join(FILES, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def wav_file(name, seconds=30, rate=22050):
    """A tone, a few MB: big enough for the upload to report progress."""
    path = os.path.join(FILES, name)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(seconds * rate)))
    return path


# --- The browser --------------------------------------------------------------------------

def xpath_text(text):
    """An XPath string literal for any text."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


class Browser:
    def __init__(self, name, base=GATEWAY):
        self.name = name
        self.base = base
        self.expected = []  # console errors this journey provokes: regular expressions
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ["CHROMIUM"]
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,960",
                    "--lang=en-US", "--no-first-run", "--disable-extensions", "--password-store=basic"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(os.environ["CHROMEDRIVER"]))
        self.driver.set_script_timeout(WAIT)

    # Waiting and finding.
    def until(self, condition, message, timeout=None):
        try:
            # A page re-renders as it goes: an element that was just replaced, or a list that is
            # still empty, means "not yet".
            ignored = (NoSuchElementException, StaleElementReferenceException, IndexError)
            return WebDriverWait(self.driver, timeout or WAIT, poll_frequency=0.05, ignored_exceptions=ignored).until(lambda d: condition())
        except TimeoutException:
            raise Failure(f"[{self.name}] waited {timeout or WAIT} s for: {message}") from None

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def all(self, css, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def one(self, css, within=None):
        return self.until(lambda: (self.all(css, within) or [None])[0], f"an element {css}")

    def by_xpath(self, xpath, what, within=None):
        return self.until(lambda: next(iter((within or self.driver).find_elements(By.XPATH, xpath)), None), what)

    def button(self, text, within=None):
        return self.by_xpath(f".//button[normalize-space()={xpath_text(text)}]", f"a button '{text}'", within or self.main())

    def link(self, text, within=None):
        return self.by_xpath(f".//a[normalize-space()={xpath_text(text)}]", f"a link '{text}'", within or self.driver.find_element(By.TAG_NAME, "body"))

    def field(self, label, within=None):
        label_el = self.by_xpath(f".//label[normalize-space()={xpath_text(label)}]", f"a field '{label}'", within or self.main())
        return self.driver.find_element(By.ID, label_el.get_attribute("for"))

    def main(self):
        return self.driver.find_element(By.ID, "main")

    def card(self, heading):
        """The section/card whose h2 is `heading`."""
        return self.by_xpath(f"//main//*[contains(@class,'card')][h2[normalize-space()={xpath_text(heading)}]]", f"a card '{heading}'")

    # Acting like a person.
    def open(self, route):
        self.driver.get(f"{self.base}/#{route}" if not route.startswith("/#") else self.base + route)

    def click(self, element):
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def fill(self, label, value, within=None):
        field = self.field(label, within)
        field.clear()
        field.send_keys(value)
        return field

    def page(self, heading):
        """Waits for the page whose h1 is `heading` to be shown."""
        shown = "const m = document.getElementById('main'); const h = m.querySelector('h1'); return !m.hasAttribute('aria-busy') && h && h.textContent"
        try:
            self.until(lambda: self.js(shown) == heading, f"the page '{heading}'")
        except Failure as failure:
            raise Failure(f"{failure} (shown: {self.js(shown)!r}, {self.driver.current_url})") from None

    def flash(self, contains):
        self.until(lambda: contains in self.js("const f = document.getElementById('flash'); return f.hidden ? '' : f.textContent"),
                   f"the message '{contains}'")

    def text_in(self, css, contains, within=None):
        self.until(lambda: any(contains in e.text for e in self.all(css, within)), f"'{contains}' in {css}")

    def confirm(self, label):
        dialog = self.one("dialog[open]")
        self.click(self.button(label, dialog))
        self.until(lambda: not self.all("dialog[open]"), "the dialog to close")

    def nav(self, label):
        self.click(self.link(label, self.driver.find_element(By.ID, "nav")))

    def sign_in(self, address, password=PASSWORD):
        self.open("/signin")
        self.page("Sign in")
        self.fill("E-mail address", address)
        self.fill("Password", password)
        self.click(self.button("Sign in"))
        self.page("Polls")

    def screenshot(self, name, width=1280, height=960):
        os.makedirs(SHOTS, exist_ok=True)
        self.driver.set_window_size(width, height)
        self.js("window.scrollTo(0, 0)")
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))
        # On a phone nothing may stick out sideways.
        wide = self.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        self.driver.set_window_size(1280, 960)
        check(wide <= 0, f"[{self.name}] {name}: the page is {wide} px wider than a {width} px window")

    # What the console said.
    def console(self):
        """Fails on console errors that were not expected, and on any CSP report."""
        problems = []
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            if "Content Security Policy" in message or "Content-Security-Policy" in message:
                problems.append(f"CSP: {message}")
            elif entry.get("level") == "SEVERE" and not any(re.search(p, message) for p in self.expected):
                problems.append(message)
        check(not problems, f"[{self.name}] console errors:\n  " + "\n  ".join(problems))

    def close(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def expected_status(path, status):
    """A console line of Chrome for an API answer the journey provokes."""
    return re.escape(path) + r".*status of " + str(status)


# --- Journeys -------------------------------------------------------------------------------

@journey
def gateway_serves_the_app():
    """Headers of the app's files from the stack's gateway; the API's paths stay the API's."""
    def get(path, headers=None):
        request = urllib.request.Request(GATEWAY + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    status, headers, body = get("/")
    check(status == 200 and headers["Content-Type"].startswith("text/html"), f"GET /: {status} {headers['Content-Type']}")
    check(b'<script type="module" src="app.js">' in body, "GET / is not web/index.html")
    check(headers["Content-Security-Policy"] == CSP, f"CSP of /: {headers['Content-Security-Policy']!r}")
    check(headers["X-Content-Type-Options"] == "nosniff", "no nosniff on /")
    check(headers["Referrer-Policy"] == "no-referrer", "no Referrer-Policy on /")
    check(headers["Cache-Control"] == "no-cache", f"Cache-Control of /: {headers['Cache-Control']!r}")
    etag = headers["ETag"]
    check(etag, "no ETag on /")
    status, _, _ = get("/", {"If-None-Match": etag})
    check(status == 304, f"a repeated load of / with its ETag: {status}, not 304")
    for path, kind in (("/app.js", "text/javascript"), ("/api.js", "text/javascript"), ("/app.css", "text/css"), ("/icon.svg", "image/svg+xml")):
        status, headers, _ = get(path, {"Accept-Encoding": "gzip"})
        check(status == 200 and headers["Content-Type"].split(";")[0] == kind, f"{path}: {status} {headers['Content-Type']}")
        check(headers["Content-Encoding"] == "gzip" or kind == "image/svg+xml", f"{path} is not gzipped")  # the icon is too small to bother
        check(headers["Content-Security-Policy"] == CSP and headers["Cache-Control"] == "no-cache", f"{path}: headers {dict(headers)}")
    status, headers, body = get("/nowhere.js")
    check(status == 404 and headers["Content-Type"] == "application/problem+json" and json.loads(body)["code"] == "not_found",
          f"an unknown file: {status} {body[:200]!r}")
    status, headers, body = get("/polls?limit=1")
    check(status == 200 and headers["Content-Type"].startswith("application/json"), f"/polls is not the API's: {status}")
    # kustomize reads nothing outside deploy/k8s: the gateway's ConfigMap holds copies of web/.
    kustomization = open(os.path.join(ROOT, "deploy/k8s/base/kustomization.yaml")).read()
    for name in sorted(os.listdir(os.path.join(ROOT, "web"))):
        if os.path.isdir(os.path.join(ROOT, "web", name)):
            continue
        copy = os.path.join(ROOT, "deploy/k8s/base/gateway/web", name)
        check(os.path.exists(copy) and open(copy, "rb").read() == open(os.path.join(ROOT, "web", name), "rb").read(),
              f"deploy/k8s/base/gateway/web/{name} is not a copy of web/{name}: cp web/*.* deploy/k8s/base/gateway/web/")
        check(f"gateway/web/{name}" in kustomization, f"deploy/k8s/base/kustomization.yaml does not list gateway/web/{name}")


@journey
def csp_blocks_injected_script():
    """The policy is in force: a script put into the page does not run, and says why."""
    b = Browser("csp")
    try:
        b.open("/polls")
        b.page("Polls")
        b.console()
        ran = b.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            document.addEventListener('securitypolicyviolation', (e) => done({ran: window.__injected === true, directive: e.violatedDirective}), {once: true});
            const s = document.createElement('script');
            s.textContent = 'window.__injected = true';
            document.head.append(s);
        """)
        check(ran["ran"] is False and ran["directive"].startswith("script-src"), f"an inline script was not blocked: {ran}")
        b.driver.get_log("browser")  # that violation was the point
    finally:
        b.close()


@journey
def account():
    """Sign up, confirm the address from the mail, rename, change the password and the
    address, tokens refreshed before expiry and after a 401, sign out, sign in, delete."""
    address = new_email("account")
    b = Browser("account")
    b.expected = [expected_status("/auth/me", 403), expected_status("/auth/login", 401), expected_status("/auth/me", 401)]
    try:
        b.open("/")
        b.page("Polls")
        b.nav("Sign in")
        b.page("Sign in")
        b.screenshot("sign-in")
        b.click(b.link("Create an account"))
        b.page("Create an account")
        b.fill("Name", "Grace Hopper")
        b.fill("E-mail address", address)
        b.fill("Password", PASSWORD)
        b.click(b.button("Create account"))
        b.page("Polls")
        b.flash("Welcome, Grace Hopper!")
        b.link("Grace Hopper", b.driver.find_element(By.ID, "nav"))

        b.open(mail_link(address, "verify"))
        b.page("Address confirmed")
        b.text_in("main", f"{address} is confirmed")
        b.nav("Grace Hopper")
        b.page("Your account")
        b.text_in("main .badge", "confirmed")
        methods = b.card("Sign-in methods")
        check("Password: set." in methods.text and "No social sign-in is linked" in methods.text, f"sign-in methods: {methods.text!r}")

        # Errors in words: an unexpected one quotes its request id.
        said = b.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all([import('/api.js'), import('/ui.js')]).then(([api, ui]) => done([
              ui.describe(new api.ApiError({status: 503, detail: 'The service is unavailable.', requestId: 'r-1'})),
              ui.describe(new api.ApiError({status: 409, detail: 'Taken.', requestId: 'r-2'}))]));
        """)
        check(said == ["The service is unavailable. (request id r-1)", "Taken."], f"errors in words: {said}")

        section = b.card("Profile")
        b.fill("Name", "Grace B. Hopper", section)
        b.click(b.button("Save name", section))
        b.flash("Your name is now Grace B. Hopper.")
        b.link("Grace B. Hopper", b.driver.find_element(By.ID, "nav"))
        b.screenshot("account")

        section = b.card("Password")
        b.fill("Current password", "not the password", section)
        b.fill("New password", "a brand new secret", section)
        b.click(b.button("Change password", section))
        b.text_in(".form-error", "The current password is wrong.", section)
        b.fill("Current password", PASSWORD, section)
        b.click(b.button("Change password", section))
        b.flash("Your password is changed.")

        # The access token is refreshed before it expires, and after the API refuses it.
        def stored():
            return b.js("return JSON.parse(localStorage.getItem('memos.session'))")
        before = stored()
        b.js("const s = JSON.parse(localStorage.getItem('memos.session')); s.expiresAt = Date.now() + 30000;"
             "localStorage.setItem('memos.session', JSON.stringify(s))")
        b.nav("Polls")
        b.page("Polls")
        b.nav("Grace B. Hopper")
        b.page("Your account")
        after = stored()
        check(after["refreshToken"] != before["refreshToken"] and after["expiresAt"] > time.time() * 1000 + 600_000,
              "a token a minute from expiry was not refreshed before use")
        b.nav("Polls")
        b.page("Polls")
        b.js("const s = JSON.parse(localStorage.getItem('memos.session')); s.accessToken = 'forged.token.value';"
             "localStorage.setItem('memos.session', JSON.stringify(s))")
        b.nav("Grace B. Hopper")
        b.page("Your account")
        check(stored()["accessToken"] != "forged.token.value", "a refused token was not refreshed")

        new_address = new_email("moved")
        section = b.card("E-mail address")
        b.fill("New e-mail address", new_address, section)
        b.fill("Current password", "a brand new secret", section)
        b.click(b.button("Change address", section))
        b.flash(f"We sent a link to {new_address}.")
        b.open(mail_link(new_address, "verify"))
        b.page("Address confirmed")
        b.text_in("main", f"{new_address} is confirmed")

        b.nav("Grace B. Hopper")
        b.page("Your account")
        b.click(b.button("Sign out", b.card("Sign out")))
        b.page("Sign in")
        b.flash("You are signed out")
        check(b.js("return localStorage.getItem('memos.session')") is None, "the session is still stored after signing out")

        b.fill("E-mail address", address)
        b.fill("Password", "a brand new secret")
        b.click(b.button("Sign in"))
        b.until(lambda: b.all(".form-error:not([hidden])"), "the sign-in error")
        check("password" in b.one(".form-error:not([hidden])").text.lower(), "the sign-in error is not in words")
        b.fill("E-mail address", new_address)
        b.click(b.button("Sign in"))
        b.page("Polls")

        b.nav("Grace B. Hopper")
        b.page("Your account")
        section = b.card("Delete the account")
        b.fill("Current password", "a brand new secret", section)
        b.click(b.button("Delete my account", section))
        b.confirm("Delete everything")
        b.page("Create an account")
        b.flash("Your account and everything in it are deleted.")
        status, _, _ = api("POST", "/auth/login", {"email": new_address, "password": "a brand new secret"})
        check(status == 401, f"signing in to the deleted account: {status}")
        b.console()
    finally:
        b.close()


@journey
def forgot_password():
    """Forgot the password: the mail's link opens the reset page, which signs in."""
    user = signup("Ada Lovelace", "forgot")
    b = Browser("forgot")
    b.expected = [expected_status("/auth/password/reset", 400)]
    try:
        b.open("/reset?token=not-a-real-token")
        b.page("Choose a new password")
        b.fill("New password", "another secret 1")
        b.fill("New password, again", "another secret 1")
        b.click(b.button("Set the password"))
        b.text_in(".form-error", "invalid, used or expired")
        b.link("Ask for a new link", b.main())

        b.open("/signin")
        b.page("Sign in")
        b.click(b.link("Forgot your password?"))
        b.page("Forgot your password?")
        b.fill("E-mail address", user["email"])
        b.click(b.button("Send the link"))
        b.text_in("main", "a link to reset its password is on its way")
        b.open(mail_link(user["email"], "reset"))
        b.page("Choose a new password")
        b.fill("New password", "another secret 2")
        b.fill("New password, again", "another secret 2")
        b.click(b.button("Set the password"))
        b.page("Polls")
        b.flash("Your new password is set")
        b.link("Ada Lovelace", b.driver.find_element(By.ID, "nav"))
        status, _, _ = api("POST", "/auth/login", {"email": user["email"], "password": "another secret 2"})
        check(status == 200, f"signing in with the new password: {status}")
        b.console()
    finally:
        b.close()


@journey
def social_sign_in():
    """Sign up with an OpenID provider (the implicit flow through the test provider's page),
    sign out and in again with it, the linked identity on the account page, delete the
    password-less account by confirming with the provider, then a new account for the same
    person. A cancelled sign-in, and answers this tab did not ask for (a state it never sent,
    a token for another nonce), are refused in words, and nothing is sent."""
    check(OIDC, "WEB_OIDC_URL is not set: run through tests/web/run.sh, which starts the provider")
    address = new_email("social")
    b = Browser("social")
    try:
        b.open("/signin")
        b.page("Sign in")
        b.button("Continue with Web")
        b.screenshot("sign-in-social")
        b.click(b.button("Continue with Web"))
        provider_sign_in(b, address, "Hedy Lamarr")
        b.page("Polls")
        b.flash("Welcome, Hedy Lamarr! Your new account signs in with Web.")
        b.link("Hedy Lamarr", b.driver.find_element(By.ID, "nav"))
        check("id_token" not in b.driver.current_url, f"the token stayed in the address: {b.driver.current_url}")
        check(b.js("return sessionStorage.getItem('memos.social')") is None, "the sign-in attempt was kept after its answer")
        first = b.js("return JSON.parse(localStorage.getItem('memos.session')).user")

        b.nav("Hedy Lamarr")
        b.page("Your account")
        b.click(b.button("Sign out", b.card("Sign out")))
        b.page("Sign in")
        b.click(b.button("Continue with Web"))
        provider_sign_in(b, address, "Hedy Lamarr")
        b.page("Polls")
        b.flash("Welcome back, Hedy Lamarr.")
        check(b.js("return JSON.parse(localStorage.getItem('memos.session')).user.id") == first["id"], "a known identity made another account")

        b.nav("Hedy Lamarr")
        b.page("Your account")
        methods = b.card("Sign-in methods")
        check(f"web: {address}" in methods.text and "No password yet" in methods.text, f"sign-in methods: {methods.text!r}")
        check("signs in with a provider only" in b.card("Password").text, "the password card offers a change without a password")
        section = b.card("Delete the account")
        check(not b.all("input[type=password]", section), "deleting a password-less account asks for a password")
        b.click(b.button("Confirm with Web", section))
        b.confirm("Delete everything")
        provider_sign_in(b, address, "Hedy Lamarr")
        b.page("Create an account")
        b.flash("Your account and everything in it are deleted.")
        check(b.js("return localStorage.getItem('memos.session')") is None, "the session is still stored after deleting")

        # The same person again: a new account (201), through the browser as before.
        b.click(b.button("Continue with Web"))
        provider_sign_in(b, address, "Hedy Lamarr")
        b.page("Polls")
        b.flash("Welcome, Hedy Lamarr! Your new account signs in with Web.")
        session = b.js("return JSON.parse(localStorage.getItem('memos.session'))")
        status, _, me = api("GET", "/auth/me", token=session["accessToken"])
        check(status == 200 and me["id"] != first["id"] and me["email"] == address and me["hasPassword"] is False,
              f"signing in after the deletion: {status} {me} (the deleted account was {first['id']})")
        b.nav("Hedy Lamarr")
        b.page("Your account")
        b.click(b.button("Sign out", b.card("Sign out")))
        b.page("Sign in")

        # Cancelled at the provider: said in words.
        b.click(b.button("Continue with Web"))
        provider_sign_in(b, address, "Hedy Lamarr", action="Cancel")
        b.page("Sign in")
        b.flash("Web did not sign you in: The person cancelled the sign-in.")

        # An answer for a request this tab never made (a state it did not send): refused, the
        # token out of the address, nothing sent. The real attempt is spent with it.
        posts = social_posts()
        b.click(b.button("Continue with Web"))
        b.until(lambda: b.driver.current_url.startswith(OIDC + "/authorize"), "the provider's page")
        b.driver.get(f"{b.base}/#id_token=x&state=bogus")
        b.page("Sign in")
        b.flash("is not for a request made here, so it was ignored")
        check("id_token" not in b.driver.current_url, f"the token stayed in the address: {b.driver.current_url}")
        check(b.js("return sessionStorage.getItem('memos.social')") is None, "the attempt survived a wrong answer")

        # This tab's state, but a token made for another request (its nonce): refused too.
        b.click(b.button("Continue with Web"))
        b.until(lambda: b.driver.current_url.startswith(OIDC + "/authorize"), "the provider's page")
        b.driver.back()
        b.page("Sign in")
        state = b.js("return JSON.parse(sessionStorage.getItem('memos.social')).state")
        b.js("window.__sent = []; const f = window.fetch;"
             "window.fetch = (url, init) => { window.__sent.push(`${init?.method || 'GET'} ${url}`); return f(url, init); }")
        other = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                         for part in ({"alg": "RS256"}, {"nonce": "another request's"})) + ".c2ln"
        b.js("location.hash = arguments[0]", "#" + urllib.parse.urlencode({"id_token": other, "state": state}))
        b.flash("The answer from Web is not for the request made here")
        b.page("Sign in")
        sent = b.js("return window.__sent")
        check(not [r for r in sent if "/auth/social/web" in r or r.startswith("DELETE")], f"a refused answer was sent on: {sent}")
        check(social_posts() == posts, "a refused answer reached POST /auth/social (the gateway's log)")
        check(b.js("return localStorage.getItem('memos.session')") is None, "a refused answer signed in")
        b.console()
    finally:
        b.close()


def provider_sign_in(b, address, name, action="Continue"):
    """The test provider's page (scripts/lib/oidc_provider.py): who signs in, then back to the app."""
    b.until(lambda: b.driver.current_url.startswith(OIDC + "/authorize"), "the provider's sign-in page")
    form = b.one("form[action='/authorize']")
    if action == "Continue":
        for field, value in (("email", address), ("name", name)):
            control = form.find_element(By.NAME, field)
            control.clear()
            control.send_keys(value)
        check(form.find_element(By.NAME, "email_verified").is_selected(), "'e-mail verified' is not ticked")
    b.click(b.by_xpath(f".//button[normalize-space()={xpath_text(action)}]", f"the provider's '{action}'", form))
    b.until(lambda: b.driver.current_url.startswith(b.base + "/"), "the way back to the app")


def social_posts():
    """How many POST /auth/social/... the stack's gateway has answered (its access log)."""
    log = os.path.join(os.environ.get("E2E_LOG_DIR", ""), "gateway.log")
    if not os.path.exists(log):
        return 0
    with open(log) as f:
        return sum('"POST /auth/social/' in line for line in f)


@journey
def polls_live_in_two_browsers():
    """Create a poll, vote and take it back in one browser; the other sees every change
    without a reload. A poll that closes shows it; the creator deletes a poll."""
    ada, ben = signup("Ada", "poll-a"), signup("Ben", "poll-b")
    a, b = Browser("polls-a"), Browser("polls-b")
    try:
        a.sign_in(ada["email"])
        a.click(a.link("New poll"))
        a.page("New poll")
        a.fill("Question", "Where do we eat on Friday?")
        a.fill("Option 1", "Pizza")
        a.fill("Option 2", "Sushi")
        a.click(a.button("Add an option"))
        a.fill("Option 3", "Tacos")
        a.click(a.button("Add an option"))
        a.click(a.by_xpath("//button[@aria-label='Remove option 4']", "the remove button of option 4"))
        check(len(a.all("input[name=candidate]")) == 3, "option 4 was not removed")
        Select(a.field("Closes")).select_by_visible_text("In 1 day")
        a.click(a.button("Create poll"))
        a.page("Where do we eat on Friday?")
        a.text_in("main .badge", "Closes tomorrow")
        a.text_in("main .live", "Live")
        poll_route = a.driver.current_url.split("#", 1)[1]

        b.sign_in(ben["email"])
        b.open(poll_route)
        b.page("Where do we eat on Friday?")
        b.text_in("main .live", "Live")
        b.js("window.__sameDocument = true")

        def count(browser, name):
            return browser.js("for (const li of document.querySelectorAll('.candidate')) if (li.querySelector('.name').textContent === arguments[0]) return li.querySelector('.count').textContent;", name)

        def sees(browser, name, text):
            browser.until(lambda: (count(browser, name) or "").startswith(text), f"{name}: {text} (now {count(browser, name)!r})")

        a.click(a.button("Vote for Pizza"))
        a.text_in(".candidate.mine .name", "Pizza")
        sees(b, "Pizza", "1 vote · 100%")
        b.click(b.button("Vote for Sushi"))
        sees(a, "Sushi", "1 vote · 50%")
        a.text_in("main .total", "2 votes")
        a.click(a.button("Take back my vote"))
        sees(b, "Pizza", "0 votes")
        b.text_in("main .total", "1 vote")
        a.click(a.button("Vote for Tacos"))
        poll_id = poll_route.rsplit("/", 1)[1]
        _, _, poll = api("GET", f"/polls/{poll_id}")
        ids = {c["name"]: c["id"] for c in poll["candidates"]}
        for i, name in enumerate(("Pizza", "Pizza", "Sushi")):
            voter = signup(f"Voter {i}", "voter")
            status, _, _ = api("POST", f"/polls/{poll_id}/votes", {"candidateId": ids[name]}, voter["token"])
            check(status == 201, f"a vote through the API: {status}")
        sees(b, "Pizza", "2 votes · 40%")
        sees(a, "Sushi", "2 votes · 40%")
        b.text_in("main .total", "5 votes")
        check(b.js("return window.__sameDocument === true"), "the second browser reloaded the page")
        a.screenshot("poll")
        a.screenshot("poll-phone", 390, 844)
        a.nav("Polls")
        a.page("Polls")
        a.screenshot("polls")

        # A poll that closes while it is open in the browser.
        closes = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
        status, _, quick = api("POST", "/polls", {"title": "Coffee now?", "candidates": ["Yes", "No"], "closesAt": closes}, ada["token"])
        check(status == 201, f"a poll through the API: {status} {quick}")
        a.nav("Polls")
        a.page("Polls")
        a.click(a.link("Coffee now?"))
        a.page("Coffee now?")
        a.until(lambda: a.js("return document.querySelector('main .badge').textContent").startswith("Closed"), "the poll to show it closed", timeout=WAIT + 5)
        check(not a.all("button.vote"), "a closed poll still offers to vote")

        # More than a page of polls: the rest come with "Load more".
        for i in range(20):
            status, _, _ = api("POST", "/polls", {"title": f"Team vote {i + 1}", "candidates": ["Yes", "No"]}, ben["token"])
            check(status == 201, f"a poll through the API: {status}")
        a.nav("Polls")
        a.page("Polls")
        check(len(a.all("li.poll-card")) == 20, f"a first page of {len(a.all('li.poll-card'))} polls, not 20")
        a.click(a.button("Load more"))
        a.until(lambda: len(a.all("li.poll-card")) > 20, "more polls after 'Load more'")
        a.click(a.link("Where do we eat on Friday?"))
        a.page("Where do we eat on Friday?")
        a.click(a.button("Delete poll"))
        a.confirm("Delete")
        a.page("Polls")
        a.flash("The poll is deleted.")
        check(not a.all(f"a[href='#{poll_route}']"), "the deleted poll is still listed")
        a.console()
        b.console()
    finally:
        a.close()
        b.close()


@journey
def board():
    """Posts newest first with images and "load more"; a post with images (checked before
    upload), whose HTML-looking title stays text; edit (remove and add images); filter by
    author; delete."""
    ada, ben = signup("Ada", "board-a"), signup("Ben", "board-b")
    for i in range(6):
        status, _, _ = api("POST", "/feeds", {"title": f"Ben's note {i + 1}", "content": "Plain words."}, ben["token"])
        check(status == 201, f"a post through the API: {status}")
    for i in range(5):
        api("POST", "/feeds", {"title": f"Ada's earlier note {i + 1}", "content": ""}, ada["token"])
    lake, sunset, forest = png_file("lake.png"), png_file("sunset.png", tint=(220, 90, 60)), png_file("forest.png", tint=(30, 140, 80))
    fake = os.path.join(FILES, "fake.png")
    with open(fake, "w") as f:
        f.write("not an image at all")
    big = os.path.join(FILES, "too-big.png")
    with open(big, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(11 * 1024 * 1024)
    title = "<img src=x onerror=alert(1)>"

    b = Browser("board")
    try:
        b.sign_in(ada["email"])
        b.nav("Board")
        b.page("Board")
        b.until(lambda: len(b.all("article.post")) == 10, "a first page of 10 posts")
        b.click(b.button("Load more"))
        b.until(lambda: len(b.all("article.post")) > 10, "more posts after 'Load more'")

        b.click(b.link("New post"))
        b.page("New post")
        b.fill("Title", title)
        b.fill("Text", "Line one\nLine two")
        b.field("Add images").send_keys("\n".join([fake, big, lake, sunset]))
        b.text_in("ul.form-error li", "fake.png is not a PNG, JPEG, GIF or WebP image.")
        b.text_in("ul.form-error li", "too-big.png is 11.0 MB; an image may be at most 10 MB.")
        b.until(lambda: len(b.all(".preview.new img")) == 2, "two previews")
        b.text_in("p.hint", "2 of at most 10 images")
        b.click(b.button("Post"))
        b.page("Board")
        b.flash("Your post is on the board.")
        first = b.all("article.post")[0]
        check(first.find_element(By.TAG_NAME, "h2").text == title, f"the title is not shown as text: {first.find_element(By.TAG_NAME, 'h2').text!r}")
        check(not b.all("img[src=x]") and not b.all("img[src$='/x']"), "the title became an element")
        try:
            b.driver.switch_to.alert
            raise Failure("the title ran a script (an alert is open)")
        except NoAlertPresentException:
            pass
        check(first.find_element(By.CSS_SELECTOR, ".content").text == "Line one\nLine two", "the text lost its lines")
        b.until(lambda: len(b.all("article.post")[0].find_elements(By.CSS_SELECTOR, ".gallery img")) == 2 and
                all(b.js("return arguments[0].complete && arguments[0].naturalWidth", img) == 480
                    for img in b.all("article.post")[0].find_elements(By.CSS_SELECTOR, ".gallery img")), "the two images to load")

        b.click(b.link("Edit", b.all("article.post")[0]))
        b.page("Edit post")
        b.until(lambda: len(b.all(".preview img")) == 2, "the post's two images")
        b.click(b.button("Remove", b.all(".preview")[0]))
        b.until(lambda: b.all(".preview.removed"), "the first image marked for removal")
        b.field("Add images").send_keys(forest)
        b.until(lambda: len(b.all(".preview.new")) == 1, "the new image's preview")
        b.fill("Title", "Weekend at the lake")
        b.fill("Text", "Two pictures from Saturday.")
        b.click(b.button("Save"))
        b.page("Board")
        b.flash("Your post is saved.")
        first = b.all("article.post")[0]
        check(first.find_element(By.TAG_NAME, "h2").text == "Weekend at the lake", "the edit did not show")
        b.until(lambda: len(b.all("article.post")[0].find_elements(By.CSS_SELECTOR, ".gallery img")) == 2, "one kept and one new image")

        b.click(b.link("Ada", b.all("article.post")[0]))
        b.page("Board")
        b.text_in("p.filter", "Showing the posts of Ada")
        b.until(lambda: len(b.all("article.post")) == 6, "Ada's six posts")
        check(all(p.find_element(By.CSS_SELECTOR, ".meta a").text == "Ada" for p in b.all("article.post")), "another author's post in the filter")
        last = b.all("article.post")[-1]
        check(last.find_element(By.TAG_NAME, "h2").text == "Ada's earlier note 1", "not newest first")
        b.click(b.button("Delete", last))
        b.confirm("Delete")
        b.flash("The post is deleted.")
        b.until(lambda: len(b.all("article.post")) == 5, "the deleted post to go")
        b.screenshot("board")
        b.screenshot("board-phone", 390, 844)
        b.console()
    finally:
        b.close()


@journey
def recordings():
    """Record from the (fake) microphone, upload with progress, play and seek through the
    signed link (fetched again when stale), pick a file, rename, delete to the trash, restore."""
    user = signup("Ada", "recordings")
    tone = wav_file("tone.wav")
    b = Browser("recordings", base=RECORDING_GATEWAY)
    try:
        b.sign_in(user["email"])
        b.nav("Recordings")
        b.page("Recordings")
        b.text_in("main .empty", "No recordings yet")

        b.click(b.button("Record"))
        b.until(lambda: "Recording… 0:03" in b.one(".rec-status").text, "three seconds of recording")
        b.click(b.button("Stop"))
        b.until(lambda: b.all(".draft audio"), "the take, ready to upload")
        b.fill("Title", "Morning idea")
        b.click(b.button("Upload"))
        b.flash('Uploaded "Morning idea".')
        item = b.one("li.recording")
        check("Morning idea" in item.text and "recording-" in item.text and ".webm" in item.text, f"the new recording: {item.text!r}")
        recording_id = item.get_attribute("data-recording")

        # Play, then seek (the content comes through a signed link, in ranges).
        b.click(b.button("Play", item))
        b.until(lambda: b.all("li.recording .player audio") or b.all("#flash.error:not([hidden])"), "the player")
        if not b.all("li.recording .player audio"):
            raise Failure(f"the player did not open: {b.one('#flash').text!r}; the link route answered: {link_route_hint(b)} "
                          "(playing needs POST /recordings/{id}/link: is the recording-service binary older than that route?)")
        audio = b.one("li.recording .player audio")
        b.until(lambda: b.js("const a = arguments[0]; return a.readyState >= 1 && isFinite(a.duration) && a.duration > 2", audio),
                f"the recording to load with its duration (is the link route there? {link_route_hint(b)})")
        b.until(lambda: b.js("return arguments[0].currentTime > 0.2", audio), "the recording to play")
        seek(b, audio, 1.5)
        log = gateway_log()
        check(re.search(rf"POST /recordings/{recording_id}/link HTTP/1.1\" 200", log), "no signed link was asked for")
        check(re.search(rf"GET /recordings/{recording_id}/content\?token=\S+ HTTP/1.1\" 206", log), "the player did not read ranges (206) through the link")
        # The links of this gateway's recording service go stale within a second (they live
        # RECORDING_LINK_TTL_SECONDS=31, the app wants 30 s left): the next seek fetches a fresh one.
        b.until(lambda: b.js("return arguments[0].currentTime > 2.6 || arguments[0].ended", audio), "more playing")
        seek(b, audio, 0.5)
        b.until(lambda: len(re.findall(rf"POST /recordings/{recording_id}/link HTTP/1.1\" 200", gateway_log())) >= 2, "a fresh link for the seek")
        b.screenshot("recordings")
        b.click(b.button("Close player", item))

        # A picked file, with the upload's progress.
        b.field("Or choose an audio file").send_keys(tone)
        b.until(lambda: b.all(".draft audio"), "the file, ready to upload")
        check(b.field("Title").get_attribute("value") == "tone", "the title does not default to the file's name")
        b.js("window.__progress = []; const p = document.querySelector('.draft .percent');"
             "new MutationObserver(() => window.__progress.push(p.textContent)).observe(p, {childList: true, characterData: true, subtree: true})")
        b.click(b.button("Upload"))
        b.flash('Uploaded "tone".')
        progress = b.js("return window.__progress")
        check(progress and progress[-1] == "100 %", f"the upload showed no progress: {progress}")
        b.until(lambda: len(b.all("li.recording")) == 2, "two recordings")

        tone_item = b.all("li.recording")[0]
        b.click(b.button("Rename", tone_item))
        b.fill("New title", "Tuning note", tone_item)
        b.click(b.button("Save", tone_item))
        b.flash('Renamed to "Tuning note".')
        b.text_in("li.recording h3", "Tuning note")

        b.click(b.button("Delete", b.all("li.recording")[0]))
        b.flash('"Tuning note" is in the trash')
        b.until(lambda: len(b.all("li.recording")) == 1, "the deleted recording to leave the list")
        b.click(b.link("Trash"))
        b.page("Trash")
        b.text_in("li.recording h3", "Tuning note")
        b.click(b.button("Restore"))
        b.flash('"Tuning note" is back in your recordings.')
        b.text_in("main .empty", "The trash is empty.")
        b.click(b.link("Back to your recordings"))
        b.page("Recordings")
        b.until(lambda: len(b.all("li.recording")) == 2, "the restored recording back in the list")
        b.console()
    finally:
        b.close()


def seek(b, audio, position):
    """Moves the playhead like the seek bar does, and waits until the element is there (with
    a fresh link, when the player took one: data-state)."""
    b.js("arguments[0].currentTime = arguments[1]", audio, position)
    arrived = ("const a = arguments[0]; return !a.seeking && a.dataset.state === 'ready' && a.readyState >= 2"
               " && a.currentTime >= arguments[1] - 0.1 && a.currentTime <= arguments[1] + 1.5")
    b.until(lambda: b.js(arrived, audio, position),
            f"the seek to {position} s (at {b.js('return arguments[0].currentTime', audio)} s)")


def gateway_log():
    if not RECORDING_GATEWAY_LOG:
        return ""
    with open(RECORDING_GATEWAY_LOG) as f:
        return f.read()


def link_route_hint(b):
    lines = [line for line in gateway_log().splitlines() if "/link " in line]
    return lines[-1] if lines else "no POST /recordings/{id}/link seen"


# --- Running --------------------------------------------------------------------------------

def main():
    only = [n for n in os.environ.get("WEB_TEST_ONLY", "").split(",") if n]
    chosen = [j for j in JOURNEYS if not only or j.__name__ in only]
    jobs = max(1, int(os.environ.get("WEB_TEST_JOBS", "2")))
    started = time.monotonic()
    failures = []

    def run(fn):
        t0 = time.monotonic()
        try:
            fn()
            return fn.__name__, None, time.monotonic() - t0
        except Exception as error:  # one journey's failure does not stop the others
            detail = str(error) if isinstance(error, Failure) else traceback.format_exc()
            return fn.__name__, detail, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, failure, seconds in pool.map(run, chosen):
            print(f"test-web: {'ok  ' if failure is None else 'FAIL'} {name} ({seconds:.1f} s)", flush=True)
            if failure:
                failures.append(name)
                print("    " + failure.replace("\n", "\n    "), flush=True)
    total = time.monotonic() - started
    shutil.rmtree(FILES, ignore_errors=True)
    if failures:
        print(f"test-web: FAILED: {len(failures)} of {len(chosen)} journeys ({', '.join(failures)}) in {total:.1f} s", flush=True)
        return 1
    print(f"test-web: all {len(chosen)} journeys passed in {total:.1f} s; screenshots in {SHOTS}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
