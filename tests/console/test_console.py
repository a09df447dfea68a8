"""The team lead's console in a real browser: Debian's Chromium driven by Playwright.

Starts followup-local itself (target/debug/followup-local, or $FOLLOWUP_LOCAL) on 127.0.0.1 with a
free port, a temp data dir and the virtual clock; seeds it with signed sample events from events/
and moves the clock so there is an overdue call task, a breached SLA (R3.2) and an Arabic SMS; then
loads every console page and checks the counts, the marks, right-to-left Arabic (computed style),
keyboard use, no console error, and the 401 of a non-loopback bind without the token. Screenshots
go to target/console-screenshots/.

    make test-console         every test here
    make test-console-short   the due page and the 401s (part of make test)
"""

import copy
import hashlib
import hmac
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("FOLLOWUP_LOCAL", ROOT / "target" / "debug" / "followup-local"))
SHOTS = ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "console-browser-secret"
TOKEN = "console-browser-token"
START = "2026-03-02T10:00:00+02:00"


def sample(name):
    return json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A followup-local process of this test, stopped (by its own pid) at the end."""

    def __init__(self, bind_host, env=None):
        if not BINARY.exists():
            pytest.skip(f"{BINARY} is not built (make test-console builds it)")
        self.tmp = tempfile.TemporaryDirectory(prefix="followup-console-")
        port = free_port()
        full_env = dict(os.environ)
        full_env.update(
            {
                "FOLLOWUP_ADDR": f"{bind_host}:{port}",
                "FOLLOWUP_DATA_DIR": self.tmp.name,
                "FOLLOWUP_WEBHOOK_SECRET": SECRET,
                "FOLLOWUP_VIRTUAL_CLOCK": START,
                "RUST_LOG": "warn",
            }
        )
        full_env.pop("FOLLOWUP_CONSOLE_TOKEN", None)
        full_env.pop("FOLLOWUP_CONFIG", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen([str(BINARY)], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self._first_line(60)
        assert line.startswith("listening on "), line
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._ids = 0

    def _first_line(self, timeout):
        found = []
        reader = threading.Thread(target=lambda: found.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise AssertionError("followup-local did not start")
        # Keep draining stdout so the process never blocks on it.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        return found[0].strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()

    def request(self, method, path, body=None, headers=None, base=None):
        req = urllib.request.Request((base or self.base) + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path):
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def now(self):
        return self.get_json("/local/clock")["now"]

    def send(self, route, kind, data):
        """A signed envelope (SPEC section 5) that happened now on the engine's clock; expects a 202."""
        self._ids += 1
        envelope = {"id": f"console-{self._ids}", "type": kind, "occurred_at": self.now(), "data": data}
        body = json.dumps(envelope).encode()
        ts = str(int(time.time()))
        sig = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-timestamp": ts, "x-signature": f"v1={sig}"}
        status, answer = self.request("POST", route, body, headers)
        assert status == 202, (kind, status, answer)
        return json.loads(answer)["case_id"]

    def clock_to(self, instant):
        status, answer = self.request("POST", "/local/clock", json.dumps({"to": instant}).encode(), {"content-type": "application/json"})
        assert status == 200, answer


def seed(server):
    """A Monday: an unpaid package not reached (SMS1 in Arabic), a painting inspection whose
    second-visit case nobody calls back (R3.2 breached at 19:00, its call task overdue), and an
    unassigned visit tomorrow (its R0.1 watch due within 24 h); the clock at 19:30."""
    package = server.send("/v1/packages", "package.booked", sample("09_package.booked.json")["data"])
    server.send("/v1/calls", "call.completed", {"case_id": package, "call_id": "call-1", "agent_id": "agent-7", "outcome": "no_answer"})
    booked = sample("01_appointment.booked.json")["data"]
    assigned = copy.deepcopy(booked)
    assigned.update({"technician_id": "T-9", "window_start": "2026-03-02T08:00:00+02:00", "window_end": "2026-03-02T10:00:00+02:00"})
    server.send("/v1/appointments", "appointment.booked", assigned)
    server.send("/v1/appointments", "appointment.completed", {"appointment_id": "A-1001", "outcome": "inspection", "needs_material": False})
    tomorrow = copy.deepcopy(booked)
    tomorrow.update(
        {
            "appointment_id": "A-3001",
            "order_id": "O-701",
            "area": "Alex",
            "window_start": "2026-03-03T14:00:00+02:00",
            "window_end": "2026-03-03T16:00:00+02:00",
        }
    )
    tomorrow["customer"] = dict(tomorrow["customer"], language="en", phone="+201009998877")
    server.send("/v1/appointments", "appointment.booked", tomorrow)
    server.clock_to("2026-03-02T19:30:00+02:00")
    cases = server.get_json("/v1/cases?order_id=O-501")["cases"]
    second = next(c["case_id"] for c in cases if c["playbook"] == "second_visit_follow_up")
    return {"package": package, "second": second}


@pytest.fixture(scope="module")
def seeded():
    server = Server("127.0.0.1")
    try:
        yield server, seed(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, browser):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, url, shot=None):
        answer = self.page.goto(url)
        if shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
        return answer

    def count(self, name):
        return int(self.page.locator(f"#count-{name} strong").inner_text())

    def close(self):
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def tab(browser):
    t = Watched(browser)
    yield t
    t.close()


def test_due_page_marks_the_overdue_call_task(seeded, tab):
    server, ids = seeded
    answer = tab.open(server.base + "/console", "due-now")
    assert answer.status == 200
    assert (tab.count("due"), tab.count("overdue")) == (0, 1)
    row = tab.page.locator("tr.task", has_text=ids["second"])
    assert row.locator(".mark").inner_text() == "OVERDUE", "marked in text, not colour only"
    assert tab.page.locator("h2#g-customer_care").is_visible()
    # Keyboard: the first Tab lands on the skip link, which leads to the main landmark.
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"
    assert tab.page.locator("main h1").inner_text() == "Due now"
    assert tab.page.locator("nav[aria-label=Console] a[aria-current=page]").inner_text() == "Due now"


def test_sla_page_marks_the_breach_and_lists_what_is_coming(seeded, tab):
    server, ids = seeded
    tab.open(server.base + "/console/sla", "sla")
    assert (tab.count("coming"), tab.count("breached")) == (1, 1)
    breach = tab.page.locator("tr.breach")
    assert breach.locator("th[scope=row]").inner_text() == "R3.2"
    assert "BREACHED" in breach.inner_text() and ids["second"] in breach.inner_text()
    assert "R0.1" in tab.page.locator("tr.deadline").inner_text()


def test_sms_page_counts_today_and_runs_arabic_right_to_left(seeded, tab):
    server, _ = seeded
    tab.open(server.base + "/console/sms", "sms")
    assert [tab.count(n) for n in ("sent", "held", "capped", "suppressed")] == [1, 0, 0, 0]
    assert tab.count("segments") >= 2
    arabic = tab.page.locator("p.sms-body[lang=ar]").first
    assert arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert arabic.inner_text().startswith("مرحباً")


def test_cases_filter_form_and_the_case_story(seeded, tab):
    server, ids = seeded
    tab.open(server.base + "/console/cases", "cases")
    assert tab.count("cases") == 2
    # Every field has its label; the form is a plain GET.
    tab.page.get_by_label("Playbook").select_option("package_payment")
    tab.page.get_by_label("Ticket status").select_option("waiting_on_customer")
    tab.page.get_by_label("Area").fill("Cairo")
    tab.page.get_by_role("button", name="Filter").click()
    tab.page.wait_for_load_state()
    assert "playbook=package_payment" in tab.page.url and "status=waiting_on_customer" in tab.page.url
    assert tab.count("cases") == 1
    tab.page.screenshot(path=str(SHOTS / "cases-filtered.png"), full_page=True)
    tab.page.get_by_role("link", name=ids["package"]).click()
    tab.page.wait_for_load_state()
    assert tab.page.locator("main h1").inner_text() == f"Case {ids['package']}"
    tab.page.screenshot(path=str(SHOTS / "case-story.png"), full_page=True)
    arabic = tab.page.locator("#sms ~ article p.sms-body[lang=ar], article p.sms-body[lang=ar]").first
    assert arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert "no_answer" in tab.page.locator("section[aria-labelledby=attempts]").inner_text()
    tab.open(server.base + f"/console/cases/{ids['second']}", "case-overdue")
    assert tab.page.locator("section[aria-labelledby=summary] .mark").inner_text() == "OVERDUE"
    # Pending timers, soonest first: an SLA timer names the rule it enforces, a step timer none.
    rows = tab.page.locator("section[aria-labelledby=timers] tbody tr")
    timers = [(rows.nth(i).locator("th").inner_text(), rows.nth(i).locator("td").first.inner_text()) for i in range(rows.count())]
    assert timers == [("call_attempt", "none"), ("cost_sla", "R3.3"), ("auto_close", "none")]


def test_clock_page_says_virtual(seeded, tab):
    server, _ = seeded
    tab.open(server.base + "/console/clock", "clock")
    assert "19:30" in tab.page.locator("#now").inner_text()
    assert tab.page.locator("#clock-kind").inner_text().startswith("virtual")


def test_what_if_page_runs_policy_b_beside_the_running_one(seeded, tab):
    server, _ = seeded
    tab.open(server.base + "/console/what-if")
    # Every field is labelled; the form is a plain GET.
    tab.page.get_by_label("Follow-up call attempts (R2.5)").fill("3")
    tab.page.get_by_label("Appointments in the month (at most 5,000 here)").fill("150")
    tab.page.get_by_label("Packages in the month (at most 1,000 here)").fill("30")
    tab.page.get_by_role("button", name="Compare").click()
    tab.page.wait_for_load_state()
    assert "attempts=3" in tab.page.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / "what-if.png"), full_page=True)
    assert tab.page.locator("main svg[role=img]").count() == 4
    row = tab.page.locator("tr", has=tab.page.locator("th[scope=row]", has_text="call tasks")).first
    a, b, diff = [int(c.replace("+", "")) for c in row.locator("td").all_inner_texts()[:3]]
    assert b - a == diff and diff > 0, "a third attempt places more calls"


def non_loopback_ip():
    """This machine's address on its default route, if it has one that is not loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the interface
            ip = s.getsockname()[0]
            return None if ip.startswith("127.") else ip
    except OSError:
        return None


def test_unauthorized_without_the_token_on_a_non_loopback_bind(browser):
    # The server decides by the address it is bound to: bound to 0.0.0.0, even a request over
    # 127.0.0.1 needs the token. The machine's own non-loopback address is tried too when it has one.
    server = Server("0.0.0.0", {"FOLLOWUP_CONSOLE_TOKEN": TOKEN})
    try:
        bases = [server.base] + [f"http://{ip}:{server.port}" for ip in filter(None, [non_loopback_ip()])]
        for base in bases:
            for path in ["/console", "/console/sla", "/v1/cases?package_id=P-77", "/v1/cases/p1-P-77"]:
                status, body = server.request("GET", path, base=base)
                assert status == 401, (base, path, status)
                assert json.loads(body)["error"]["code"] == "unauthorized"
                ok, _ = server.request("GET", path, headers={"authorization": f"Bearer {TOKEN}"}, base=base)
                assert ok in (200, 404), (base, path, ok)
        # A browser: ?token= once sets the cookie and drops the token from the address.
        # Without it, a 401 (the browser logs that error itself, and asks for a favicon: not watched).
        bare = browser.new_context()
        assert bare.new_page().goto(server.base + "/console").status == 401
        bare.close()
        tab = Watched(browser)
        answer = tab.open(server.base + f"/console/sla?token={TOKEN}", "token-login")
        assert answer.status == 200 and tab.page.url == server.base + "/console/sla"
        assert tab.page.locator("main h1").inner_text() == "SLA deadlines"
        tab.close()
    finally:
        server.stop()
