#!/usr/bin/env python3
"""Drives the tenant viewer page (Sources/AdminServer/viewer.html) in headless Chromium.

Needs Playwright's Python package and a Chromium on this machine (Debian's /usr/bin/chromium by
default; never `playwright install`). It asserts on facts the caller seeded, given as --expect:

  {"total": 240,                      every event of the tenant
   "page_size": 25,                   the page size to search with
   "filter": {"severity": "WARNING", "metadata": "{\\"region\\":\\"eu-west-1\\"}"},
                                      form fields by API parameter name (since/until: RFC 3339)
   "filter_count": 33,                how many events match that filter
   "tail_count": 3,                   how many events --tail-command stores
   "tail_ids": ["..."]}               optional: their ids

  VIEWER_TOKEN=ait_... viewer_check.py --url http://127.0.0.1:9090/v1/tenants/T/viewer \\
      --screenshots /tmp/viewer-shots --expect @expect.json --tail-command 'audit-ingest backfill new.ndjson'

Exit status 0 when every check passed; 1 with a message naming the first failed one; 2 for bad usage.
"""
import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from playwright.sync_api import sync_playwright, Error as PlaywrightError

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 720}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Viewer:
    """One browser page on the viewer, with what it logged and requested."""

    def __init__(self, browser, url, token, viewport, timeout_ms):
        self.context = browser.new_context(viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(timeout_ms)
        self.token, self.problems = token, []
        self.page.on("pageerror", lambda e: self.problems.append("page error: %s" % e))
        self.page.on("console", self._console)
        self.page.on("request", self._request)
        self.page.on("dialog", self._dialog)
        response = self.page.goto(url)
        check(response is not None and response.ok, "GET %s answered %s" % (url, response and response.status))
        self.csp = response.headers.get("content-security-policy")

    def _console(self, message):
        text = message.text
        if message.type == "error" and "Failed to load resource" not in text:
            self.problems.append("console error: %s" % text)  # CSP and Trusted Types violations land here

    def _request(self, request):
        if self.token and self.token in request.url:
            self.problems.append("the token appeared in a URL: %s" % request.url.replace(self.token, "<token>"))

    def _dialog(self, dialog):  # alert() from hostile event data would land here
        self.problems.append("a JavaScript %s opened: %r" % (dialog.type, dialog.message))
        dialog.dismiss()

    def assert_clean(self):
        if not self.page.is_closed():
            counts = self.page.evaluate("() => [document.scripts.length, document.images.length]")
            check(counts == [1, 0], "the page holds %d script and %d img elements (event data became markup?)" % tuple(counts))
        check(not self.problems, "; ".join(self.problems))

    def search(self, token, page_size, fields=None):
        self.page.fill("#token", token)
        self.page.fill("#f-limit", str(page_size))
        for name, value in (fields or {}).items():
            self.set_field(name, value)
        self.page.click("#search")
        return self.wait_page(1)

    def set_field(self, name, value):
        selector = '#search-form [name="%s"]' % name
        kind = self.page.eval_on_selector(selector, "e => e.tagName === 'SELECT' ? 'select' : e.type")
        if kind == "select":
            self.page.select_option(selector, str(value).upper() if name == "severity" else str(value))
        elif kind == "datetime-local":  # the form takes UTC wall time
            self.page.fill(selector, ts(value).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
        else:
            self.page.fill(selector, str(value))

    def wait_page(self, number):
        """Waits for page `number` of results (or an error) and returns its rows as (id, timestamp)."""
        self.page.wait_for_function(
            """n => { const s = document.getElementById('results-status').textContent;
                      return s.startsWith('Page ' + n + ':') || s.startsWith('No ') || s.includes('failed'); }""",
            arg=number)
        status = self.page.text_content("#results-status")
        check(status.startswith("Page %d:" % number) or status.startswith("No "),
              "page %d did not load: %s / alert: %s" % (number, status, self.page.text_content("#alert")))
        return self.rows("#results")

    def rows(self, where):
        return [tuple(r) for r in self.page.eval_on_selector_all(
            where + " tbody tr", "rows => rows.map(r => [r.dataset.id, r.cells[0].textContent])")]

    def all_pages(self, page_size):
        pages = [self.wait_page(1)]
        while self.page.is_enabled("#next"):
            check(len(pages[-1]) == page_size, "page %d has %d rows, not the page size %d, yet a next page exists"
                  % (len(pages), len(pages[-1]), page_size))
            self.page.click("#next")
            pages.append(self.wait_page(len(pages) + 1))
        return pages

    def close(self):
        self.context.close()


def newest_first(rows, what):
    for (id1, t1), (id2, t2) in zip(rows, rows[1:]):
        check(ts(t1) >= ts(t2), "%s not newest first: %s (%s) before %s (%s)" % (what, t1, id1, t2, id2))


def focus_is_visible(page):
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }""")


ACCESSIBILITY_JS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('<html> has no lang');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const named = el.labels.length && [...el.labels].some(l => l.textContent.trim())
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push('no label: ' + (el.id || el.name || el.outerHTML.slice(0, 60)));
  }
  let last = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    if (h.closest('dialog:not([open])')) continue;
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push('heading level jumps from h' + last + ' to ' + h.tagName + ': ' + h.textContent);
    last = level;
  }
  // Contrast (WCAG AA 4.5:1) of each visible text against its nearest opaque background.
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  for (const el of document.body.querySelectorAll('*')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('.vh, [hidden], button:disabled')) continue;
    let bg = [255, 255, 255];
    for (let a = el; a; a = a.parentElement) {
      const c = rgb(getComputedStyle(a).backgroundColor);
      if (c.length === 3 || c[3] === 1) { bg = c.slice(0, 3); break; }
    }
    const [l1, l2] = [lum(rgb(style.color)), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ':1 for "' + el.textContent.trim().slice(0, 40) + '"');
  }
  return problems;
}"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the viewer's full URL, .../v1/tenants/{id}/viewer")
    parser.add_argument("--token", default=os.environ.get("VIEWER_TOKEN"),
                        help="a token that reads the tenant (default: $VIEWER_TOKEN, which keeps it off the command line)")
    parser.add_argument("--screenshots", required=True, help="directory for the PNGs")
    parser.add_argument("--expect", required=True, help="JSON object (or @FILE) with the seeded facts")
    parser.add_argument("--tail-command", help="shell command that stores expect.tail_count new events")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=20, help="seconds to wait for anything (default: %(default)s)")
    parser.add_argument("--require-csp", action="store_true", help="fail unless the page is served with a CSP")
    args = parser.parse_args()
    if not args.token:
        parser.error("give the token in $VIEWER_TOKEN (or --token)")
    try:
        text = open(args.expect[1:]).read() if args.expect.startswith("@") else args.expect
        expect = json.loads(text)
        total, size, flt, flt_count = expect["total"], expect["page_size"], expect["filter"], expect["filter_count"]
    except (OSError, ValueError, KeyError) as e:
        parser.error("--expect: %s (needs total, page_size, filter, filter_count)" % e)
    if args.tail_command and "tail_count" not in expect:
        parser.error("--tail-command needs expect.tail_count")
    os.makedirs(args.screenshots, exist_ok=True)
    shot = lambda page, name: page.screenshot(path=os.path.join(args.screenshots, name), full_page=True)
    timeout_ms = args.timeout * 1000
    step = "start"
    viewers = []

    def open_viewer(viewport=WIDE):
        viewer = Viewer(browser, args.url, args.token, viewport, timeout_ms)
        viewers.append(viewer)
        return viewer

    def passed(message):
        print("ok   %-22s %s" % (step, message), flush=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        try:
            step = "1 first page"
            v = open_viewer()
            if args.require_csp:
                check(v.csp, "the page was served without a Content-Security-Policy header")
            first = v.search(args.token, size)
            check(len(first) == min(size, total), "first page shows %d rows, expected %d" % (len(first), min(size, total)))
            newest_first(first, "first page")
            shot(v.page, "wide-results.png")
            passed("%d rows, newest first (%s ... %s)" % (len(first), first[0][1], first[-1][1]))

            step = "2 paging"
            pages = [first]
            while v.page.is_enabled("#next"):
                v.page.click("#next")
                pages.append(v.wait_page(len(pages) + 1))
            seen = [row for p in pages for row in p]
            ids = [row[0] for row in seen]
            check(len(set(ids)) == len(ids), "%d repeated event ids across pages" % (len(ids) - len(set(ids))))
            check(len(ids) == total, "paging showed %d events, expected %d" % (len(ids), total))
            newest_first(seen, "the pages together")
            check(v.page.is_disabled("#next"), "Next page is still enabled on the last page")
            if len(pages) > 1:
                v.page.click("#back")
                again = v.wait_page(len(pages) - 1)
                check(again == pages[-2], "Back did not show page %d again" % (len(pages) - 1))
            passed("%d pages, %d distinct events, Back shows page %d again" % (len(pages), len(ids), max(1, len(pages) - 1)))

            step = "3 filter"
            for name, value in flt.items():
                v.set_field(name, value)
            # Enter in a text field submits the form.
            v.page.press("#f-action", "Enter")
            filtered = [row for p in v.all_pages(size) for row in p]
            filtered_ids = {row[0] for row in filtered}
            check(len(filtered) == flt_count, "filter %s shows %d events, expected %d" % (json.dumps(flt), len(filtered), flt_count))
            check(len(filtered_ids) == len(filtered), "repeated ids in the filtered pages")
            newest_first(filtered, "filtered pages")
            passed("%s: %d events" % (json.dumps(flt), len(filtered)))

            step = "4 detail"
            detail = None
            for index in range(min(20, len(v.rows("#results")))):
                row = v.page.locator("#results tbody tr").nth(index)
                row.click()
                v.page.wait_for_selector("#detail[open]")
                fields = v.page.eval_on_selector_all("#detail-fields dt", "ds => ds.map(d => [d.textContent, d.nextElementSibling.textContent])")
                meta = v.page.text_content("#detail-meta")
                if meta != "null":
                    detail = (dict(fields), meta, row.get_attribute("data-id"))
                    break
                v.page.keyboard.press("Escape")
            check(detail, "no event with metadata among the first rows of the filtered results")
            fields, meta_text, detail_id = detail
            for name in ["id", "tenant_id", "user_id", "action", "resource_type", "resource_id", "severity",
                         "timestamp", "ip_address", "user_agent", "ingested_at"]:
                check(name in fields, "the detail view lacks the field %s (has %s)" % (name, sorted(fields)))
            check(fields["id"] == detail_id, "the detail view shows %s for row %s" % (fields["id"], detail_id))
            try:
                detail_meta = json.loads(meta_text)
            except ValueError as e:
                raise CheckFailed("the detail's metadata is not JSON: %s: %r" % (e, meta_text[:200]))
            check(isinstance(detail_meta, dict) and "\n  " in meta_text, "the metadata is not a pretty-printed JSON object")
            v.page.screenshot(path=os.path.join(args.screenshots, "detail.png"))
            v.page.keyboard.press("Escape")
            v.page.wait_for_selector("#detail", state="hidden")
            check(v.page.evaluate("document.activeElement.dataset.id") == detail_id, "focus did not return to the row after Escape")
            passed("event %s: %d fields and its metadata (%d keys)" % (detail_id, len(fields), len(detail_meta)))

            step = "5 export"
            formats = v.page.eval_on_selector_all("button[data-format]", "bs => bs.map(b => b.dataset.format)")
            check({"ndjson", "csv"} <= set(formats), "export buttons are %s, expected ndjson and csv" % formats)
            for fmt in formats:
                with v.page.expect_download() as info:
                    v.page.click('button[data-format="%s"]' % fmt)
                download = info.value
                failure = download.failure()
                check(failure is None, "the %s download failed: %s" % (fmt, failure))
                content = open(download.path(), encoding="utf-8", newline="").read()
                check(download.suggested_filename.endswith("." + fmt), "the %s file is named %s" % (fmt, download.suggested_filename))
                if fmt == "ndjson":
                    lines = [json.loads(line) for line in content.splitlines()]
                    got = {e["id"] for e in lines}
                    match = [e for e in lines if e["id"] == detail_id]
                    check(match and match[0]["metadata"] == detail_meta,
                          "the detail's metadata differs from the export's for %s" % detail_id)
                elif fmt == "csv":
                    table = list(csv.reader(io.StringIO(content)))
                    check(table and "id" in table[0], "the CSV has no header row with id")
                    lines = table[1:]
                    got = {r[table[0].index("id")] for r in lines}
                else:
                    raise CheckFailed("no check for the export format %s" % fmt)
                check(len(lines) == flt_count, "%s export has %d events, expected %d" % (fmt, len(lines), flt_count))
                check(got == filtered_ids, "%s export holds other events than the filtered pages" % fmt)
                passed("%s: %s, %d events, the filtered ones" % (fmt, download.suggested_filename, len(lines)))
            v.page.wait_for_function("() => document.getElementById('export-status').textContent.startsWith('Saved')")

            step = "6 live tail"
            if not args.tail_command:
                passed("skipped (no --tail-command)")
            else:
                v.page.check("#tail-toggle")
                v.page.wait_for_function("() => document.getElementById('tail-live').textContent.includes('watching')")
                check(len(v.rows("#tail")) == 0, "the tail showed old events before the command ran")
                started = time.monotonic()
                run = subprocess.run(args.tail_command, shell=True, capture_output=True, text=True, timeout=args.timeout * 6)
                check(run.returncode == 0, "--tail-command exited %d: %s" % (run.returncode, run.stderr.strip()[-500:]))
                want = expect["tail_count"]
                v.page.wait_for_function("n => document.querySelectorAll('#tail tbody tr').length >= n", arg=want)
                tail_rows = v.rows("#tail")
                top = {r[0] for r in tail_rows[:want]}
                check(len(tail_rows) == want, "the tail shows %d events, expected %d" % (len(tail_rows), want))
                check(not top & set(ids), "the tail showed events that existed before it started")
                if "tail_ids" in expect:
                    check(top == set(expect["tail_ids"]), "the tail's top rows are not the new events")
                live = v.page.text_content("#tail-live")
                check("new event" in live, "the live region says %r" % live)
                v.page.uncheck("#tail-toggle")
                check("off" in v.page.text_content("#tail-live"), "turning the tail off was not announced")
                shot(v.page, "tail.png")
                passed("%d new events at the top %.1f s after the command started; announced %r"
                       % (want, time.monotonic() - started, live))
            v.assert_clean()

            step = "7 keyboard"
            k = open_viewer()
            for _ in range(60):
                k.page.keyboard.press("Tab")
                focused = k.page.evaluate("document.activeElement.id")
                if focused == "token":
                    k.page.keyboard.type(args.token)
                if focused:
                    check(focus_is_visible(k.page), "no visible focus ring on #%s" % focused)
                if focused == "search":
                    break
            check(focused == "search", "Tab never reached the Search button")
            k.page.keyboard.press("Enter")
            check(len(k.wait_page(1)) > 0, "Enter on Search showed no rows")
            k.page.keyboard.press("Tab")
            check(k.page.evaluate("document.activeElement.tagName") == "TR", "Tab after Search does not reach the first row")
            check(focus_is_visible(k.page), "no visible focus ring on a focused row")
            for key in ["Enter", " "]:
                k.page.keyboard.press(key)
                k.page.wait_for_selector("#detail[open]")
                check(k.page.evaluate("!!document.activeElement.closest('dialog')"), "focus is not in the open detail view")
                k.page.keyboard.press("Escape")
                k.page.wait_for_selector("#detail", state="hidden")
                check(k.page.evaluate("document.activeElement.tagName") == "TR", "focus did not return to the row")
            problems = k.page.evaluate(ACCESSIBILITY_JS)
            check(not problems, "accessibility: " + "; ".join(problems[:10]))
            cdp = k.context.new_cdp_session(k.page)
            nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
            roles = {"textbox", "combobox", "checkbox", "button", "spinbutton", "switch", "searchbox", "row"}
            focusable = lambda n: any(p["name"] == "focusable" and p["value"]["value"] for p in n.get("properties", []))
            controls = [n for n in nodes if not n.get("ignored") and n.get("role", {}).get("value") in roles
                        and (n["role"]["value"] != "row" or focusable(n))]
            unnamed = [n["role"]["value"] for n in controls if not n.get("name", {}).get("value", "").strip()]
            check(not unnamed, "controls without an accessible name: %s" % unnamed)
            passed("Tab to Search, Enter; Enter/Space open a row, Escape returns; %d named controls; contrast ok" % len(controls))

            narrow = open_viewer(NARROW)
            rows = narrow.search(args.token, size)
            check(rows, "no rows at 320 px")
            width = narrow.page.evaluate("document.documentElement.scrollWidth")
            check(width <= 320, "at 320 px the page is %d px wide (horizontal scrolling)" % width)
            display = narrow.page.eval_on_selector("#results tbody tr", "r => getComputedStyle(r).display")
            check(display == "block", "at 320 px rows are display:%s, not a stacked list" % display)
            narrow.page.evaluate("() => document.getElementById('h-results').scrollIntoView()")
            narrow.page.screenshot(path=os.path.join(args.screenshots, "narrow-320.png"))
            narrow.page.locator("#results tbody tr").first.click()
            narrow.page.wait_for_selector("#detail[open]")
            over = narrow.page.eval_on_selector("#detail", "d => d.scrollWidth - d.clientWidth")
            check(over <= 0, "the detail view scrolls sideways at 320 px (%d px)" % over)
            narrow.page.screenshot(path=os.path.join(args.screenshots, "narrow-320-detail.png"))
            passed("scrollWidth %d <= 320, rows stacked, detail fits" % width)

            step = "8 wrong token"
            w = open_viewer()
            w.page.fill("#token", "ait_" + "0" * 64)
            w.page.click("#search")
            w.page.wait_for_function("() => document.querySelector('[role=alert]').textContent.trim() !== ''")
            message = w.page.text_content("[role=alert]")
            check("401" in message, "the alert for a wrong token says %r" % message)
            check(w.page.is_visible("[role=alert]"), "the error alert is not visible")
            stored = w.page.evaluate("() => Object.values(sessionStorage)")
            check(not any("0" * 64 in value for value in stored), "a token the server refused was kept in sessionStorage")
            shot(w.page, "error.png")
            passed("alert: %s" % message)

            step = "8 forget token"
            check(not k.page.is_checked("#remember"), "'Keep in this tab' is ticked by default")
            check(k.page.evaluate("() => sessionStorage.length") == 0, "the token was kept without 'Keep in this tab'")
            k.page.check("#remember")
            kept = k.page.evaluate("() => Object.values(sessionStorage)")
            check(args.token in kept, "a token that worked was not kept in sessionStorage once 'Keep in this tab' was ticked")
            k.page.click("#forget")
            check(k.page.evaluate("() => sessionStorage.length") == 0, "Forget token left something in sessionStorage")
            check(k.page.input_value("#token") == "" and not k.rows("#results"), "Forget token left the token or the rows")
            passed("kept in sessionStorage only once ticked, gone (with the rows) after Forget token")

            step = "9 console"
            for viewer in viewers:
                viewer.assert_clean()
            passed("no page errors, no CSP or Trusted Types violations, token in no URL%s"
                   % ("" if v.csp else " (note: the page was served WITHOUT a Content-Security-Policy)"))
        except (CheckFailed, PlaywrightError, subprocess.TimeoutExpired) as failure:
            print("FAIL %-22s %s" % (step, " / ".join(str(failure).strip().splitlines()[:3]) or repr(failure)),
                  file=sys.stderr)
            for viewer in viewers[-1:]:
                try:
                    shot(viewer.page, "failure.png")
                    print("     screenshot: %s" % os.path.join(args.screenshots, "failure.png"), file=sys.stderr)
                except PlaywrightError:
                    pass
            return 1
        finally:
            browser.close()
    print("PASS: every check of the viewer passed; screenshots in %s" % args.screenshots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
