"""Age gates: the "I am 18 or older" page that stands in front of an adult site's content.

A gate is a page that says, in the site's language, that the content is for adults, and offers
a way in: a form to submit (often with a birth date or a checkbox) or a link. Passing it sets
a cookie, so the crawler keeps one cookie jar per site visit (thrown away after it) and asks
for the page it wanted again once through. This module only recognises a gate and builds the
request that passes it; the spider decides when to ask (a page that shows nothing) and how
often (once per site visit).

Recognised in the eight languages notices are written in. The way in is the control whose
words say "enter / yes / I am 18" and not "leave / no"; a form is preferred to a link, since a
form's submission is what sets the cookie on most gates.
"""

from __future__ import annotations

import re

from scrapy.http import HtmlResponse, Request
from scrapy.selector import Selector

# What a gate says about the content.
_AGE_WORDS = re.compile(
    r"18\s*\+|\b(?:over|under)\s*18\b|\b18\s*(?:years|yrs)|\badults?\s+only|age\s+verif|"
    r"\bi\s*(?:am|'m)\s*(?:18|over|an adult)|성인|19세|청소년|연령\s*확인|年齢確認|18歳|成人|"
    r"未成年|18岁|年满|18\s*лет|совершеннолет|18\s*tuổi|trưởng thành|mayor(?:es)?\s+de\s+edad|"
    r"18\s*años|\bab\s*18\b|18\s*jahre|volljährig|jugendschutz",
    re.IGNORECASE)
# What the way in says.
_ENTER_WORDS = re.compile(
    r"\benter\b|\byes\b|\bi\s*(?:am|'m)\b|\bconfirm|\bcontinue\b|\bagree\b|\baccept\b|입장|"
    r"^예$|네|확인|동의|들어가기|はい|入場|同意|進む|入る|进入|是的|^是$|确认|继续|войти|^да\b|"
    r"подтвер|продолж|\bvào\b|\bcó\b|đồng ý|tiếp tục|entrar|\bsí\b|acepto|continuar|"
    r"eintreten|betreten|\bja\b|bestätig|weiter|einverstanden",
    re.IGNORECASE)
# What the way out says: never the control to use.
_LEAVE_WORDS = re.compile(
    r"\bleave\b|\bexit\b|^no\b|\bunder\s*18|아니|나가|떠나|いいえ|退出|离开|離開|\bнет\b|"
    r"выйти|уйти|không|\bsalir\b|\bnein\b|verlassen",
    re.IGNORECASE)
# A gate is a short page: more text than this is an article that mentions ages.
MAX_GATE_TEXT = 4000


def _words(selector: Selector) -> str:
    text = " ".join(selector.xpath(".//text() | .//@value | .//@title | .//@aria-label"
                                   " | .//@alt").getall())
    return " ".join(text.split())


def is_age_gate(response: HtmlResponse, selector: str | None = None) -> bool:
    """Whether the page is an age gate: short, speaks of adults or 18, offers a way in (the
    control a site profile's `selector` names, where it has one)."""
    text = " ".join(" ".join(response.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style)]").getall()).split())
    if len(text) > MAX_GATE_TEXT or not _AGE_WORDS.search(
            text + " " + (response.xpath("//title/text()").get() or "")):
        return False
    return pass_request(response, selector) is not None


# The controls that submit a form when clicked.
_CLICKABLE = ("descendant::input[@type='submit' or @type='SUBMIT' or @type='image'] | "
              "descendant::button[not(@type) or @type='submit' or @type='SUBMIT']")


def pass_request(response: HtmlResponse, selector: str | None = None) -> Request | None:
    """The request that passes the gate on `response`: its form submitted through the control
    that says "enter", else its "enter" link; None if it offers neither. A site profile's
    `selector` (CSS) names the control where the words cannot: a form's button or a link."""
    if selector is not None:
        return _selected(response, selector)
    for form in response.xpath("//form"):
        controls = form.xpath(_CLICKABLE)
        for control in controls:
            words = _words(control)
            if _ENTER_WORDS.search(words) and not _LEAVE_WORDS.search(words):
                return _submitted(form, control)
        if not controls and _ENTER_WORDS.search(_words(form)):
            return _submitted(form, None)
    for link in response.xpath("//a[@href]"):
        words = _words(link)
        href = link.attrib["href"].strip()
        if (words and _ENTER_WORDS.search(words) and not _LEAVE_WORDS.search(words)
                and not href.lower().startswith(("javascript:", "#", "mailto:"))):
            return Request(response.urljoin(href), dont_filter=True)
    return None


def _selected(response: HtmlResponse, selector: str) -> Request | None:
    """The request the control `selector` names makes: a link's, or its form's."""
    for control in response.css(selector):
        href = control.attrib.get("href", "").strip()
        if href and not href.lower().startswith(("javascript:", "#", "mailto:")):
            return Request(response.urljoin(href), dont_filter=True)
        form = control.xpath("ancestor-or-self::form[1]")
        if form:
            is_form = control.root.tag == "form"
            return _submitted(form[0], None if is_form else control)
    return None


def _submitted(form: Selector, click: Selector | None) -> Request | None:
    """The form sent as a browser sends it (form2request, the library Scrapy now points to
    instead of FormRequest.from_response): through `click`, with the gate's boxes ticked."""
    from form2request import form2request

    try:
        built = form2request(form, _checked_boxes(form),
                             click=click.root if click is not None else False)
    except ValueError:  # a form that cannot be sent (an unknown method)
        return None
    return built.to_scrapy(callback=None, dont_filter=True)


def _checked_boxes(form: Selector) -> dict[str, str]:
    """A gate's "I confirm" checkboxes, ticked (from_response sends only checked ones)."""
    return {box.attrib["name"]: box.attrib.get("value", "on")
            for box in form.xpath(".//input[@type='checkbox'][@name]")}
