"""Web forms: the parties that take abuse reports only through a form on their site (hosting
providers, CDNs, authorities), filled by the browser once a person approved the notice.

**Profiles.** The operator describes each form once, in a JSON file (HAECHI_FORM_PROFILES,
else form_profiles.json in the data folder): an object whose keys are profile names, each
with the form's `url`, its `fields` (a CSS selector and what goes there), the `submit`
button's selector, how the `confirmation` is recognised (a selector, text it must show, or
both) and an optional `timeout` per step. A field's `value` is a template of the notice's
values, `{reference}`, `{urls}` (one per line), `{reporter_org}`, `{reporter_email}`,
`{body}`, `{subject}`, `{site}`; `kind` is `text` (the default), `select` (the option whose
value or label the template gives) or `check` (a checkbox or radio button ticked). The file
is checked whole when it is loaded, and any fault is a ProfileError naming the profile and the
key, so a typo is found when the operator writes it, not when a victim's notice is sent.

**What a page cannot change.** A form page is written by a party we report to, or by whoever
took over its site, so it is as hostile as any page the crawler reads. Every request the page
makes (its navigation, redirects, scripts, the form's post, a script's navigation or fetch)
is fetched by the crawler's BrowserNetwork (crawler/browser.py) under the outbound policy,
with Chromium given a proxy that does not exist for anything that escapes the route; pictures
are never fetched, so no picture is on the screenshot. On top of that, the report goes only
to the profile's host (and the `hosts` the profile adds): a navigation or a non-GET request
anywhere else is refused, so a form's action or a script cannot hand the report to someone the
operator did not choose. The hop after a redirect that Chromium sends outside the route (it
does, for a redirect the route answered) meets the closed proxy, and where it was going is
judged by the same two rules, so a post redirected to a private address fails too. Only the
profile's fields are filled, each with its template's text (a notice's value is inserted as
it is, never read as a template), and each is read back before the form is sent.

**What counts as sent.** Only a confirmation seen after the submit: visible, and showing the
profile's text. Any other ending (the page down, a field missing, a request the policy
refused, no confirmation within the timeout) is a FormError naming the profile and the step;
the sender keeps the notice unsent. The receipt's screenshot is kept as evidence
(`keep_receipt`) under a key the notice's `confirmation_key` holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from playwright.async_api import async_playwright

from crawler.browser import CHROMIUM_ARGS, BrowserNetwork, chromium_path
from crawler.run import crawl_settings
from engines.fetch import BLOCKED_ADDRESS, FETCH_SCHEMES, BlockedAddress, default_policy
from engines.home import data_home
from engines.objects import ObjectStore, open_store
from engines.sealed import SEALED_SUFFIX, decrypted, media_cipher
from engines.settings import ConfigurationError, current
from takedown.evidence import evidence_store

if TYPE_CHECKING:
    from playwright.async_api import Page, Route
    from playwright.async_api import Request as BrowserRequest

PROFILES_FILE = "form_profiles.json"
# The notice's values a template may name (the sender gives each of them).
TEMPLATE_NAMES = frozenset({"reference", "urls", "reporter_org", "reporter_email", "body",
                            "subject", "site"})
TEXT, SELECT, CHECK = "text", "select", "check"
FIELD_KINDS = (TEXT, SELECT, CHECK)
# Seconds each step (open, fill, submit, confirm) may take, unless a profile says otherwise.
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
# A profiles file is a few kilobytes; one far larger is not one.
MAX_PROFILES_BYTES = 1024 * 1024
# What the receipt keeps of the confirmation's text.
MAX_CONFIRMATION_CHARS = 2000
VIEWPORT = {"width": 1280, "height": 1024}
# How often the confirmation is looked for while the page loads.
POLL_SECONDS = 0.2
RECEIPT_PREFIX = "form-receipts"
# The steps a FormError names.
OPEN, FILL, SUBMIT, CONFIRM, SCREENSHOT = "open", "fill", "submit", "confirm", "screenshot"
# The refusal kind of a request sent to a host the profile does not name.
OTHER_HOST = "not-the-profile's-host"
# How Chromium says a request met the proxy CHROMIUM_ARGS names, where nothing listens (it
# escaped the route: FormNetwork.escaped).
_PROXY_FAILURES = ("ERR_PROXY_CONNECTION_FAILED", "ERR_TUNNEL_CONNECTION_FAILED")
# Said of every failure after the submit button was pressed.
_MAYBE_SENT = "The report may have reached the party: look before sending it again"
_PROFILE_KEYS = frozenset({"url", "fields", "submit", "confirmation", "timeout", "hosts",
                           "parties"})
_FIELD_KEYS = frozenset({"selector", "value", "kind"})
_CONFIRMATION_KEYS = frozenset({"selector", "text"})
# The confirmation's element when it is seen (visible and showing the text), else null.
_CONFIRMATION_JS = """([selector, text]) => {
  const element = document.querySelector(selector);
  if (!element || !element.getClientRects().length) return null;
  const shown = element.innerText || "";
  return !text || shown.includes(text) ? shown : null;
}"""


class ProfileError(ConfigurationError, ValueError):
    """The form profiles file cannot be used; says which profile and key, and why (exit 3)."""


class FormError(RuntimeError):
    """A form not submitted, or not shown to be: says which profile and step failed."""

    def __init__(self, profile: str, step: str, detail: str) -> None:
        self.profile, self.step, self.detail = profile, step, detail
        super().__init__(f"form profile {profile!r}, step {step}: {detail}")


@dataclass(frozen=True)
class FormField:
    """One field of a form: where it is (CSS) and what goes there."""

    selector: str
    kind: str = TEXT
    template: str = ""

    def render(self, values: Mapping[str, str]) -> str:
        """The template with the notice's values in (each inserted as it is: a value with
        braces in it is text, not a template)."""
        return self.template.format_map({name: values[name] for name in names(self.template)})


@dataclass(frozen=True)
class FormProfile:
    """A party's report form, as the operator described it (see the module docstring)."""

    name: str
    url: str
    fields: tuple[FormField, ...]
    submit: str
    confirmation_text: str = ""
    confirmation_selector: str = "body"
    timeout: float = DEFAULT_TIMEOUT
    hosts: frozenset[str] = field(default_factory=frozenset)
    # The parties (as RDAP or the CDN list names them: a hosting network, a registrar) that
    # take reports only through this form, in the operator's word: the escalation ladder
    # fills it for them in place of writing to any address they publish (takedown/ladder.py).
    parties: frozenset[str] = field(default_factory=frozenset)

    @property
    def recipients(self) -> frozenset[str]:
        """The hosts the report may go to: the form's own, and those the operator added."""
        return self.hosts | {urlsplit(self.url).hostname or ""}

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(n for f in self.fields for n in names(f.template))


@dataclass(frozen=True)
class FormReceipt:
    """What shows that a form was submitted: the confirmation, seen."""

    profile: str
    submitted_at: dt.datetime
    final_url: str
    confirmation_text: str
    screenshot: bytes


def names(template: str) -> list[str]:
    """The value names `template` uses; ValueError for anything but plain `{name}`s of
    TEMPLATE_NAMES (`{{` and `}}` are braces)."""
    found = []
    for _text, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}} may not have a format or conversion")
        if name not in TEMPLATE_NAMES:
            raise ValueError(f"{{{name}}} is not a notice value (known: "
                             f"{', '.join(sorted(TEMPLATE_NAMES))})")
        found.append(name)
    return found


# --- Loading profiles ------------------------------------------------------------------------


def profiles_path() -> Path:
    """HAECHI_FORM_PROFILES if set, else form_profiles.json in the data folder."""
    configured = current().form_profiles
    return Path(configured).expanduser() if configured else data_home() / PROFILES_FILE


def load_profiles(path: Path | None = None) -> dict[str, FormProfile]:
    """Every profile in the file at `path` (default `profiles_path()`), checked whole: a
    ProfileError for the first fault. No file is no profiles (an installation that reports
    only by e-mail), unless the setting names one."""
    if path is None:
        path = profiles_path()
        if not current().form_profiles and not path.exists():
            return {}
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILES_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"form profiles {path} cannot be read ({exc.strerror or exc})"
                           ) from None
    if len(data) > MAX_PROFILES_BYTES:
        raise ProfileError(f"form profiles {path} is larger than {MAX_PROFILES_BYTES} bytes")
    try:
        document = json.loads(data, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileError(f"form profiles {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProfileError(f"form profiles {path}: give an object of profiles by name")
    return {name: parse_profile(name, body, str(path)) for name, body in document.items()}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON's object, refusing a key given twice (JSON keeps the last, silently)."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice))} given more than once")
    return dict(pairs)


def parse_profile(name: str, body: Any, where: str = "form profiles") -> FormProfile:
    """One profile from its JSON; ProfileError naming the profile and the key at fault."""

    def fault(key: str, why: str) -> ProfileError:
        return ProfileError(f"{where}: profile {name!r}: {key}: {why}")

    if not name.strip() or len(name) > 100:
        raise fault("name", "give a name of 1 to 100 characters")
    if not isinstance(body, dict):
        raise fault("profile", "give an object with url, fields, submit and confirmation")
    _known_keys(body, _PROFILE_KEYS, "profile", fault)
    url = _text(body, "url", fault)
    parts = urlsplit(url)
    if parts.scheme not in FETCH_SCHEMES or not parts.hostname:
        raise fault("url", f"{url!r} is not an http(s) URL with a host")
    raw_fields = body.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise fault("fields", "give a list of at least one field")
    fields = tuple(_field(raw, f"fields[{i}]", fault) for i, raw in enumerate(raw_fields))
    confirmation = body.get("confirmation")
    if not isinstance(confirmation, dict):
        raise fault("confirmation", "give an object with a selector, a text, or both")
    _known_keys(confirmation, _CONFIRMATION_KEYS, "confirmation", fault)
    if not confirmation.get("selector") and not confirmation.get("text"):
        raise fault("confirmation", "give a selector, a text, or both (how else would we "
                                    "know the form was accepted?)")
    selector = _text(confirmation, "selector", fault, "confirmation.", "body")
    text = _text(confirmation, "text", fault, "confirmation.", "")
    timeout = body.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            0 < timeout <= MAX_TIMEOUT):
        raise fault("timeout", f"give seconds per step, above 0 and at most {MAX_TIMEOUT:g}")
    hosts = body.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise fault("hosts", "give a list of host names the form may send the report to")
    parties = body.get("parties", [])
    if not isinstance(parties, list) or not all(isinstance(n, str) and n.strip()
                                                for n in parties):
        raise fault("parties", "give a list of the names of the parties that take reports "
                               "only through this form")
    return FormProfile(name, url, fields, _text(body, "submit", fault), text, selector,
                       float(timeout), frozenset(h.strip().lower() for h in hosts),
                       frozenset(n.strip().casefold() for n in parties))


def _known_keys(body: dict[str, Any], known: frozenset[str], what: str, fault: Any) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise fault(what, f"unknown key(s) {', '.join(map(repr, unknown))} (known: "
                          f"{', '.join(sorted(known))})")


def _text(body: dict[str, Any], key: str, fault: Any, prefix: str = "",
          default: str | None = None) -> str:
    """A required non-empty string (or `default` when the key is absent)."""
    value = body.get(key, default)
    if value is None:
        raise fault(prefix + key, "missing")
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise fault(prefix + key, "give a non-empty string")
    return value.strip() if default is None else value


def _field(raw: Any, where: str, fault: Any) -> FormField:
    if not isinstance(raw, dict):
        raise fault(where, "give an object with a selector and a value")
    _known_keys(raw, _FIELD_KEYS, where, fault)
    selector = _text(raw, "selector", fault, f"{where}.")
    kind = raw.get("kind", TEXT)
    if kind not in FIELD_KINDS:
        raise fault(f"{where}.kind", f"{kind!r} is not one of {', '.join(FIELD_KINDS)}")
    if kind == CHECK:
        if "value" in raw:
            raise fault(f"{where}.value", "a check field is ticked and takes no value")
        return FormField(selector, kind)
    template = _text(raw, "value", fault, f"{where}.")
    try:
        names(template)
    except ValueError as exc:
        raise fault(f"{where}.value", str(exc)) from None
    return FormField(selector, kind, template)


# --- Submitting --------------------------------------------------------------------------


@dataclass
class FormNetwork:
    """The crawler's BrowserNetwork (every request fetched under the outbound policy), and
    before it the one rule a form adds: the report goes to the profile's hosts only. What
    either refuses is kept in the BrowserNetwork's `refused`, and any of it fails the
    submission (`refusal`)."""

    fetcher: BrowserNetwork
    recipients: frozenset[str]

    async def handle(self, route: Route, request: BrowserRequest) -> None:
        if _sends(request) and _host(request.url) not in self.recipients:
            self.fetcher.refused.append(self._judged(request) or (
                request.url, OTHER_HOST, "off the profile's hosts"))
            await route.abort("blockedbyclient")
            return
        await self.fetcher.handle(route, request)

    def escaped(self, request: BrowserRequest) -> None:
        """A request that failed at Chromium's proxy, which is not there, escaped the route:
        Chromium sends the hop after a redirect the route answered without asking the route
        (and then, for a GET, asks again through it; a form's post re-sent on a 307 or 308 it
        does not). Nothing was sent, but where the page tried to go is judged as if it had
        asked, so a redirect to a refused address fails the submission like any other."""
        failure = request.failure or ""
        if any(sign in failure for sign in _PROXY_FAILURES):
            refused = self._judged(request, resolve=True)
            if refused is not None:
                self.fetcher.refused.append(refused)

    def _judged(self, request: BrowserRequest, resolve: bool = False
                ) -> tuple[str, str, str] | None:
        """Why `request` may not be made, as BrowserNetwork's `refused` says it, or None:
        the policy's reason first (a private address is named as one; a name is resolved
        only when `resolve`), then the host rule's."""
        url, host = request.url, _host(request.url)
        try:
            self.fetcher.policy.check_url(url)
            if resolve:
                with contextlib.suppress(OSError, ValueError):  # a name that does not resolve
                    self.fetcher.policy.resolve(host, urlsplit(url).port or 80)
        except BlockedAddress as exc:
            return url, BLOCKED_ADDRESS, str(exc)
        if _sends(request) and host not in self.recipients:
            what = "navigation" if request.is_navigation_request() else "request"
            return url, OTHER_HOST, (
                f"a {request.method} {what} to {host or url}, which is not the profile's "
                f"host ({', '.join(sorted(self.recipients))})")
        return None

    def refusal(self) -> str | None:
        """The first request refused by the policy or the host rule, said as a sentence."""
        for url, kind, detail in self.fetcher.refused:
            if kind in (BLOCKED_ADDRESS, OTHER_HOST):
                return f"refused {url[:200]}: {detail}"
        return None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _sends(request: BrowserRequest) -> bool:
    """Whether `request` could carry the report, or take the browser, somewhere: a
    navigation of any frame, or any method but GET and HEAD."""
    return request.is_navigation_request() or request.method not in ("GET", "HEAD")


def submit_form(profile: FormProfile, values: Mapping[str, str]) -> FormReceipt:
    """Fill and submit `profile`'s form with the notice's `values` in a headless Chromium,
    and return the receipt once the confirmation is seen; FormError otherwise. Blocking (it
    runs its own event loop): call it from the sender's thread, not from a running loop."""
    missing = sorted(profile.template_names - set(values))
    if missing:
        raise FormError(profile.name, FILL, f"no value given for {', '.join(missing)}")
    # The crawler's Chromium and User-Agent (HAECHI_CHROMIUM, HAECHI_SCRAPY_USER_AGENT): a
    # party sees one Haechi, whether it crawls their site or fills their form.
    settings = crawl_settings()
    executable = chromium_path(settings.get("HAECHI_CHROMIUM"))
    if executable is None:
        raise FormError(profile.name, OPEN, "no Chromium is installed (apt-get install "
                                            "chromium, or set HAECHI_CHROMIUM)")
    return asyncio.run(_submit(profile, values, executable, settings.get("USER_AGENT")))


async def _submit(profile: FormProfile, values: Mapping[str, str], executable: str,
                  user_agent: str) -> FormReceipt:
    network = FormNetwork(BrowserNetwork(default_policy(), user_agent, profile.timeout),
                          profile.recipients)
    try:
        async with async_playwright() as playwright:
            try:
                browser = await playwright.chromium.launch(
                    executable_path=executable, args=list(CHROMIUM_ARGS), headless=True)
            except Exception as exc:
                raise FormError(profile.name, OPEN, f"Chromium did not start ({_short(exc)})"
                                ) from None
            try:
                context = await browser.new_context(
                    service_workers="block", accept_downloads=False, viewport=VIEWPORT,
                    user_agent=user_agent)
                await context.route("**", network.handle)
                context.on("requestfailed", network.escaped)
                session = _Session(profile, await context.new_page(), network)
                # Every step has its timeout; this bounds what a page could still stretch
                # (a script that never yields holds up even an evaluate).
                ceiling = profile.timeout * (len(profile.fields) + 5)
                try:
                    return await asyncio.wait_for(session.run(values), ceiling)
                except TimeoutError:
                    raise session.error(session.step, f"the submission took longer than "
                                                      f"{ceiling:g} s in all") from None
            finally:
                await browser.close()
    finally:
        network.fetcher.close()


@dataclass
class _Session:
    """One submission's steps on one page; each failure a FormError naming its step."""

    profile: FormProfile
    page: Page
    network: FormNetwork
    step: str = OPEN

    @property
    def ms(self) -> float:
        return self.profile.timeout * 1000

    def error(self, step: str, detail: str) -> FormError:
        """The step's error, led by a refused request when there was one (it is the cause)."""
        refused = self.network.refusal()
        return FormError(self.profile.name, step,
                         f"{refused}; {detail}" if refused else detail)

    def check_refusals(self, step: str) -> None:
        refused = self.network.refusal()
        if refused:
            raise FormError(self.profile.name, step, refused)

    async def run(self, values: Mapping[str, str]) -> FormReceipt:
        await self.open()
        self.step = FILL
        for form_field in self.profile.fields:
            await self.fill(form_field, values)
        self.step = SUBMIT
        if await self.confirmation() is not None:
            raise self.error(SUBMIT, "the confirmation is already shown before the form is "
                                     "sent: give a selector or text only the confirmation "
                                     "page shows")
        await self.submit()
        self.step = CONFIRM
        text = await self.confirmed()
        submitted_at = dt.datetime.now(dt.UTC)
        self.step = SCREENSHOT
        return FormReceipt(self.profile.name, submitted_at, self.page.url, text,
                           await self.screenshot())

    async def open(self) -> None:
        try:
            response = await self.page.goto(self.profile.url, timeout=self.ms)
        except Exception as exc:
            raise self.error(OPEN, f"{self.profile.url} did not load ({_short(exc)})"
                             ) from None
        self.check_refusals(OPEN)
        if response is None or response.status >= 400:
            status = "no answer" if response is None else f"status {response.status}"
            raise self.error(OPEN, f"{self.profile.url} answered {status}")

    async def fill(self, form_field: FormField, values: Mapping[str, str]) -> None:
        """Fill one field and read it back: a field that did not keep its value (a
        single-line input given several URLs, a script rewriting it) fails here, before
        anything is sent."""
        locator = self.page.locator(f"css={form_field.selector}")
        what = f"field {form_field.selector!r}"
        try:
            await locator.wait_for(state="visible", timeout=self.ms)
        except Exception:
            raise self.error(FILL, f"{what} is not on the page {self.page.url} (waited "
                                   f"{self.profile.timeout:g} s)") from None
        try:
            if form_field.kind == CHECK:
                await locator.check(timeout=self.ms)
                kept = await locator.is_checked()
            else:
                wanted = form_field.render(values)
                if form_field.kind == SELECT:
                    chosen = await locator.select_option(wanted, timeout=self.ms)
                    kept = bool(chosen) and await locator.input_value() in chosen
                else:
                    await locator.fill(wanted, timeout=self.ms)
                    kept = await locator.input_value() == wanted
        except Exception as exc:
            raise self.error(FILL, f"{what} could not be filled ({_short(exc)})") from None
        self.check_refusals(FILL)
        if not kept:
            raise self.error(FILL, f"{what} did not keep the value given")

    async def submit(self) -> None:
        """Press the submit button: one not on the page is an error before anything is
        sent; a press that fails may have sent the report, and the error says so."""
        button = self.page.locator(f"css={self.profile.submit}")
        try:
            await button.wait_for(state="visible", timeout=self.ms)
        except Exception:
            raise self.error(SUBMIT, f"the submit button {self.profile.submit!r} is not on "
                                     f"the page {self.page.url[:200]}") from None
        try:
            await button.click(timeout=self.ms)
        except Exception as exc:
            raise self.error(SUBMIT, f"pressing the submit button {self.profile.submit!r} "
                                     f"failed ({_short(exc)}). {_MAYBE_SENT}") from None

    async def confirmation(self) -> str | None:
        """The confirmation's text when it is shown now, else None."""
        with contextlib.suppress(Exception):  # a page between two documents
            return await asyncio.wait_for(self.page.evaluate(_CONFIRMATION_JS, [
                self.profile.confirmation_selector, self.profile.confirmation_text]),
                self.profile.timeout)
        return None

    async def confirmed(self) -> str:
        """Wait for the confirmation; a refused request ends the wait at once."""
        deadline = time.monotonic() + self.profile.timeout
        while True:
            self.check_refusals(CONFIRM)
            shown = await self.confirmation()
            if shown is not None:
                self.check_refusals(CONFIRM)
                return " ".join(shown.split())[:MAX_CONFIRMATION_CHARS]
            if time.monotonic() >= deadline:
                wanted = " showing " + repr(self.profile.confirmation_text) if (
                    self.profile.confirmation_text) else ""
                raise self.error(CONFIRM, (
                    f"no confirmation ({self.profile.confirmation_selector!r}{wanted}) within "
                    f"{self.profile.timeout:g} s after the form was sent; the page is "
                    f"{self.page.url[:200]}. {_MAYBE_SENT}"))
            await asyncio.sleep(POLL_SECONDS)

    async def screenshot(self) -> bytes:
        try:
            with contextlib.suppress(Exception):
                await self.page.locator(f"css={self.profile.confirmation_selector}").first \
                    .scroll_into_view_if_needed(timeout=1000)
            return await self.page.screenshot(type="png", timeout=self.ms)
        except Exception as exc:
            raise self.error(SCREENSHOT, f"the confirmation was seen but could not be "
                                         f"captured ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    """Playwright's message, first line only (the rest is its call log)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# --- The receipt as evidence -------------------------------------------------------------


def keep_receipt(receipt: FormReceipt, media: ObjectStore | None = None) -> str:
    """Keep the receipt's screenshot in the evidence store (HAECHI_EVIDENCE_STORE, else the
    media store `media`, default HAECHI_STORE) under a key named by its SHA-256, encrypted
    with HAECHI_EVIDENCE_KEY when it is set (a confirmation page may echo the victim's URLs),
    as the evidence copies are; the key, for the notice's `confirmation_key`. Written once:
    the same screenshot kept again is the same key."""
    digest = hashlib.sha256(receipt.screenshot).hexdigest()
    key = f"{RECEIPT_PREFIX}/{digest[:2]}/{digest}.png"
    cipher = media_cipher()
    store = evidence_store(media or open_store())
    if cipher is not None:
        key += SEALED_SUFFIX
    if not store.exists(key):
        store.put(key, receipt.screenshot if cipher is None else
                  cipher.encrypt(receipt.screenshot))
    return key


def read_receipt(key: str, media: ObjectStore | None = None) -> bytes:
    """The PNG kept under `key` by `keep_receipt` (decrypted when it was kept encrypted)."""
    store = evidence_store(media or open_store())
    if key.endswith(SEALED_SUFFIX):
        return decrypted(lambda: store.get(key), "form receipt")
    return store.get(key)
