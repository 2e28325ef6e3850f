"""Age gates as adult sites write them (issue 14, "gates"): recognised in the notice languages,
passed through the control that says "enter", never "leave"; ordinary pages are no gates."""

from __future__ import annotations

from urllib.parse import parse_qs

from scrapy.http import HtmlResponse

from crawler.gates import is_age_gate, pass_request

URL = "https://tube.example/age-check?return=/videos/77"


def page(html: str, url: str = URL) -> HtmlResponse:
    return HtmlResponse(url, body=html.encode(), encoding="utf-8")


FORM_GATE = """<html><head><title>Age verification</title></head><body>
<div class="modal"><h2>This website contains adult content</h2>
<p>You must be 18 years or older to enter.</p>
<form method="post" action="/age-check">
  <input type="hidden" name="return" value="/videos/77">
  <input type="hidden" name="csrf" value="k9">
  <label><input type="checkbox" name="confirm" value="1"> I confirm</label>
  <button type="submit" name="choice" value="leave">Leave</button>
  <button type="submit" name="choice" value="enter">I am 18 or older - Enter</button>
</form></div></body></html>"""


def test_a_form_gate_is_passed_through_its_enter_button_with_the_box_ticked() -> None:
    response = page(FORM_GATE)
    assert is_age_gate(response)
    request = pass_request(response)
    assert request is not None and request.method == "POST"
    assert request.url == "https://tube.example/age-check"
    sent = parse_qs(request.body.decode())
    assert sent == {"return": ["/videos/77"], "csrf": ["k9"], "confirm": ["1"],
                    "choice": ["enter"]}


def test_link_gates_in_korean_japanese_and_german() -> None:
    korean = page("""<html><body><h1>19세 미만 청소년 이용불가</h1>
      <p>이 정보내용은 청소년 유해매체물로서 성인인증이 필요합니다.</p>
      <a href="https://www.google.com">나가기</a> <a href="/adult/enter?ok=1">성인 입장하기</a>
      </body></html>""")
    assert is_age_gate(korean)
    assert pass_request(korean).url == "https://tube.example/adult/enter?ok=1"
    japanese = page("""<html><body><p>年齢確認 あなたは18歳以上ですか？</p>
      <a href="/exit">いいえ</a><a class="btn" href="/enter">はい、18歳以上です</a>
      </body></html>""")
    assert pass_request(japanese).url == "https://tube.example/enter"
    german = page("""<html><body><p>Jugendschutz: Inhalte ab 18 Jahren.</p>
      <a href="/raus">Verlassen</a><a href="/?age=ok">Ich bin volljährig – Eintreten</a>
      </body></html>""")
    assert is_age_gate(german) and pass_request(german).url == "https://tube.example/?age=ok"


def test_ordinary_pages_are_no_gates() -> None:
    gallery = page("<html><body><h1>Photos</h1><img src='/a.jpg'><a href='/p/2'>next</a>"
                   "</body></html>")
    assert not is_age_gate(gallery)
    article = page("<html><body><p>" + "A long article about why adults over 18 vote. " * 200
                   + "</p><a href='/more'>continue reading</a></body></html>")
    assert not is_age_gate(article)
    only_leave = page("<html><body><p>18+ only</p><a href='/bye'>Leave</a></body></html>")
    assert not is_age_gate(only_leave) and pass_request(only_leave) is None
