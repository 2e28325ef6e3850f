"""The oracle browser: proof that every planted copy is reachable as a browser reaches it.

Why: a low crawler score only means something if each pattern can be crawled at all. This
walker does, with httpx, what a browser and its scripts do on these sites: it keeps cookies,
answers the age gate (form or link) and the challenge (it evaluates the challenge's
arithmetic), follows links, iframes, meta refresh and script redirects, reads robots.txt and
gzipped sitemaps, app state (``__NEXT_DATA__``, ``__NUXT__``, ``__INITIAL_STATE__``, JSON-LD)
with its escapes, JSON APIs named in bundles (with their cursors), srcset, lazy attributes,
CSS backgrounds, Open Graph, data: URIs, HLS (master, variants, AES-128 keys) and DASH
(SegmentTemplate). It sends the page as Referer, as a browser does.

Every picture it gets, and a frame per second of every video, goes to a folder that
``haechi match --json`` checks against the bank of the eval's HAECHI_HOME. Each planted
copy whose victim matches a file from its site counts as reachable; any match to another
victim, or on a distractor, is reported too (it would make the eval unfair to the crawler).
It knows the patterns in general (it is the eval's author's browser), never a planted URL.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import html
import io
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import av
import httpx
from PIL import Image

from .media import aes128_decrypt

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0 Safari/537.36")
URLISH = re.compile(r"""(?:https?://[^\s"'<>()\\]+|/[A-Za-z0-9_\-.~%/?=&;:+,@]+)""")
ATTR = re.compile(
    r"""(?:src|href|srcset|poster|content|data-[a-z-]+|action)\s*=\s*("([^"]*)"|'([^']*)')""",
    re.I)
CSSURL = re.compile(r"""url\(\s*(?:&quot;|["'])?([^"')&]+)""")
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/dash+xml", "application/vnd.apple.mpegurl", "application/x-gzip",
              "application/ld+json")


def unescape(text: str) -> str:
    """What a JS engine would see: JSON escapes of '/' undone, HTML entities decoded."""
    return html.unescape(text.replace("\\u002F", "/").replace("\\/", "/"))


class Walker:
    """One site's walk: a cookie jar, a queue of (url, referer), what was fetched."""

    def __init__(self, site: dict, out: Path, limit: int = 80) -> None:
        self.site, self.out, self.limit = site, out, limit
        self.hosts = set(site["hosts"])
        self.client = httpx.Client(headers={"User-Agent": UA}, follow_redirects=True,
                                   timeout=20)
        self.seen: set[str] = set()
        self.queue: deque[tuple[str, str | None]] = deque()
        self.files: list[tuple[str, Path]] = []
        self.key_cache: dict[str, bytes] = {}

    def ours(self, url: str) -> bool:
        return urlsplit(url).hostname in self.hosts

    def push(self, url: str, referer: str | None) -> None:
        url = url.split("#")[0]
        if url and url not in self.seen and self.ours(url):
            self.seen.add(url)
            self.queue.append((url, referer))

    def get(self, url: str, referer: str | None) -> httpx.Response:
        headers = {"Referer": referer} if referer else {}
        return self.client.get(url, headers=headers)

    def pass_gate(self, resp: httpx.Response) -> httpx.Response:
        """Answer an age gate or a challenge the way the page asks a browser to."""
        text = resp.text if "html" in resp.headers.get("content-type", "") else ""
        m = re.search(r"var a=(\d+),b=(\d+),c=(\d+);var t=\(a\*b\+c\)\.toString\(36\)", text)
        if resp.status_code == 503 and m:
            a, b, c = (int(x) for x in m.groups())
            v, tok = a * b + c, ""
            while v:
                v, r = divmod(v, 36)
                tok = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + tok
            name = re.search(r'document\.cookie="([^=]+)=', text).group(1)  # type: ignore[union-attr]
            self.client.cookies.set(name, tok, domain=urlsplit(str(resp.url)).hostname)
            return self.get(str(resp.url), None)
        form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', text, re.S)
        if form:
            data = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
            return self.client.post(urljoin(str(resp.url), form.group(1)),
                                    data={k: html.unescape(v) for k, v in data.items()})
        link = re.search(r'href="([^"]*age-verification/accept[^"]*)"', text)
        if link:
            return self.get(urljoin(str(resp.url), html.unescape(link.group(1))), None)
        return resp

    def walk(self) -> None:
        """Pass the gate at the start URL, then follow every reference, breadth first."""
        start = self.site["start_url"]
        self.seen.add(start)
        try:
            resp = self.pass_gate(self.get(start, None))
            self.handle(str(resp.url), resp, None)
        except httpx.HTTPError:
            return
        robots = urljoin(start, "/robots.txt")
        self.push(robots, None)
        n = 0
        while self.queue and n < self.limit:
            url, ref = self.queue.popleft()
            n += 1
            try:
                resp = self.get(url, ref)
                self.handle(url, resp, ref)
            except httpx.HTTPError:
                continue

    def handle(self, url: str, resp: httpx.Response, ref: str | None) -> None:
        if resp.status_code >= 400:
            return
        ctype = resp.headers.get("content-type", "")
        body = resp.content
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
            ctype = "text/xml"
        if url.endswith(".key"):
            return
        if ctype.startswith(TEXT_TYPES) or url.endswith((".m3u8", ".mpd")):
            self.expand(url, body.decode("utf-8", "replace"), ctype)
        else:
            self.keep(url, body)

    def expand(self, url: str, text: str, ctype: str) -> None:
        """Every reference a browser or the page's scripts would follow."""
        if text.startswith("#EXTM3U"):
            return self.hls(url, text)
        if "<MPD" in text[:2000]:
            return self.dash(url, text)
        text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", lambda m: (
            self.keep(url, base64.b64decode(m.group(0).split(",", 1)[1])), "")[1], text)
        clear = unescape(text)
        refs: list[str] = []
        for m in ATTR.finditer(text):
            value = html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
            if value.lstrip().startswith("{"):
                refs += URLISH.findall(unescape(value))
            refs += [part.strip().split(" ")[0] for part in value.split(",")]
        refs += CSSURL.findall(clear)
        refs += URLISH.findall(clear)
        refs += re.findall(r"url=([^\"'>\s]+)", text)
        refs += re.findall(r"(?:location\.replace\(|location\.href=)[\"']([^\"']+)", text)
        refs += re.findall(r"^Sitemap:\s*(\S+)", text, re.M)
        refs += re.findall(r"<(?:image:)?loc>([^<]+)<", text)
        # relative links (vBulletin writes attachment.php?... without a leading slash)
        refs += re.findall(r'href="([a-z][\w.]*\.php\?[^"]+)"', text)
        # infinite scroll: the endpoint and cursor the feed script combines
        ep = re.search(r'data-endpoint="([^"]+)" data-cursor="([^"]+)"', text)
        if ep:
            refs.append(f"{ep.group(1)}?cursor={ep.group(2)}")
        if "json" in ctype:
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("next_cursor"):
                refs.append(urljoin(url, urlsplit(url).path) + f"?cursor={doc['next_cursor']}")
        for r in refs:
            r = r.strip().rstrip(";,")
            if r and not r.startswith(("data:", "javascript:")):
                self.push(urljoin(url, r), url)

    def hls(self, url: str, text: str) -> None:
        """Master -> variants; a media playlist's segments are fetched, decrypted, joined."""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if any(ln.startswith("#EXT-X-STREAM-INF") for ln in lines):
            for ln in lines:
                if not ln.startswith("#"):
                    self.push(urljoin(url, ln), url)
            return
        key = iv = None
        data = b""
        for ln in lines:
            if ln.startswith("#EXT-X-KEY"):
                uri = re.search(r'URI="([^"]+)"', ln).group(1)  # type: ignore[union-attr]
                key = self.get(urljoin(url, uri), url).content
                ivm = re.search(r"IV=0x([0-9a-fA-F]+)", ln)
                iv = bytes.fromhex(ivm.group(1)) if ivm else None
            elif not ln.startswith("#"):
                seg = self.get(urljoin(url, ln), url).content
                data += aes128_decrypt(seg, key, iv or bytes(16)) if key else seg
        self.keep(url, data, video=True)

    def dash(self, url: str, text: str) -> None:
        """SegmentTemplate: the init segment and every numbered media segment, joined."""
        tpl = re.search(r'<SegmentTemplate[^>]*timescale="(\d+)"[^>]*duration="(\d+)"[^>]*'
                        r'initialization="([^"]+)"[^>]*media="([^"]+)"[^>]*startNumber="(\d+)"',
                        text)
        total = re.search(r'mediaPresentationDuration="PT([\d.]+)S"', text)
        rep = re.search(r'<Representation id="([^"]+)"', text)
        if not (tpl and total and rep):
            return
        scale, dur, init, med, start = tpl.groups()
        count = int(-(-float(total.group(1)) * int(scale) // int(dur)))
        rid = rep.group(1)
        data = self.get(urljoin(url, init.replace("$RepresentationID$", rid)), url).content
        for n in range(int(start), int(start) + count):
            name = re.sub(r"\$Number%0(\d)d\$", lambda m, n=n: str(n).zfill(int(m.group(1))),
                          med.replace("$RepresentationID$", rid))
            data += self.get(urljoin(url, name), url).content
        self.keep(url, data, video=True)

    def keep(self, url: str, data: bytes, video: bool = False) -> None:
        """Write pictures, every frame of an animation and a frame a second of a video."""
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        frames: list[Image.Image] = []
        try:
            with Image.open(io.BytesIO(data)) as im:
                for i in range(getattr(im, "n_frames", 1)):
                    im.seek(i)
                    frames.append(im.convert("RGB"))
        except Exception:
            try:
                with av.open(io.BytesIO(data)) as c:
                    last = -1.0
                    for f in c.decode(video=0):
                        t = float(f.time or 0)
                        if t - last >= 1.0:
                            frames.append(f.to_image())
                            last = t
            except Exception:
                return
        for i, f in enumerate(frames):
            p = self.out / f"{tag}-{i:03d}.png"
            f.save(p)
            self.files.append((url, p))


def run(planted: dict, home_env: dict[str, str], haechi: list[str]) -> dict:
    """Walk every site, match what was fetched, and say which planted copies were reached."""
    with tempfile.TemporaryDirectory() as tmp:
        origin: dict[str, tuple[str, str]] = {}

        def one(site: dict) -> Walker:
            folder = Path(tmp) / site["name"]
            folder.mkdir()
            w = Walker(site, folder)
            w.walk()
            return w

        with ThreadPoolExecutor(16) as pool:
            for site, w in zip(planted["sites"], pool.map(one, planted["sites"]), strict=True):
                for url, path in w.files:
                    origin[str(path)] = (site["name"], url)
        res = subprocess.run([*haechi, "match", "--json", tmp], env=home_env,
                             capture_output=True, text=True, timeout=600)
    victim_of = {p["site"]: p["victim"] for p in planted["planted"]}
    pattern_of = {p["site"]: p["pattern"] for p in planted["planted"]}
    distractors = {u for s in planted["sites"] for u in s["distractor_urls"]}
    reached: set[str] = set()
    wrong = []
    for line in res.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        site, url = origin.get(rec.get("path", ""), ("?", "?"))
        for m in rec.get("matches", []):
            if m.get("victim") == victim_of.get(site) and url not in distractors:
                reached.add(site)
            else:
                wrong.append({"site": site, "url": url, "victim": m.get("victim")})
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"reached": 0, "planted": 0})
    for site, pattern in pattern_of.items():
        per[pattern]["planted"] += 1
        per[pattern]["reached"] += site in reached
    missed = sorted(set(pattern_of) - reached)
    return {"reached": len(reached), "planted": len(pattern_of), "by_pattern": dict(per),
            "missed": missed, "wrong_matches": wrong[:20], "wrong_match_count": len(wrong)}


def main(argv: list[str] | None = None) -> int:
    """``python -m testkit.heldout_web.oracle --planted P --home H`` against a running web."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--planted", type=Path, required=True)
    ap.add_argument("--home", type=Path, required=True, help="HAECHI_HOME with the victims")
    args = ap.parse_args(argv)
    import os

    env = dict(os.environ, HAECHI_HOME=str(args.home))
    exe = Path(sys.executable).with_name("haechi")
    print(json.dumps(run(json.loads(args.planted.read_text()), env, [str(exe)]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
