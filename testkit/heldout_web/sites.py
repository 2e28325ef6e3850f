"""The held-out web's sites: one delivery pattern each, built the way real sites build it.

Why these patterns: a crawler that reads ``<img src>`` finds what 2010 galleries showed.
Sites that re-post intimate images today are tube players (HLS, DASH), client-rendered
galleries, infinite feeds, age gates and bot challenges, image hosts behind interstitials,
responsive and lazy markup. Each site here has one of them, written from how such sites are
usually built (video.js, hls.js, dash.js, Next.js, Nuxt, vBulletin, fancybox-like lightboxes,
Cloudflare-style challenge pages, Yoast-style sitemaps), not from what any crawler reads.

Every site has a few posts: one carries a lightly edited copy of a victim picture (or a video
showing it mid-clip), the others carry distractors delivered the same way, so that a crawler
that opens cases on anything shows up as false cases. Everything is derived from the seed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import media

LANGS = {
    "ko": ("성인 인증", "이 사이트는 성인용 콘텐츠를 포함하고 있습니다. 만 19세 이상입니까?",
           "19세 이상입니다, 입장", "나가기"),
    "en": ("Age verification", "This website contains adult content. Are you 18 or older?",
           "I am 18 or older - Enter", "Leave"),
    "ja": ("年齢確認", "このサイトはアダルトコンテンツを含みます。あなたは18歳以上ですか？",
           "はい、18歳以上です", "いいえ"),
    "zh": ("年龄验证", "本网站包含成人内容。您是否已满18岁？", "我已满18岁，进入", "离开"),
    "ru": ("Подтверждение возраста", "Сайт содержит материалы для взрослых. Вам есть 18 лет?",
           "Мне есть 18 лет — войти", "Уйти"),
    "vi": ("Xác minh tuổi", "Trang web này có nội dung người lớn. Bạn đã đủ 18 tuổi chưa?",
           "Tôi đã đủ 18 tuổi - Vào", "Rời đi"),
    "es": ("Verificación de edad", "Este sitio contiene material para adultos. ¿Tienes 18 años?",
           "Tengo 18 años o más - Entrar", "Salir"),
    "de": ("Altersprüfung", "Diese Website enthält Inhalte für Erwachsene. Bist du über 18?",
           "Ich bin über 18 - Betreten", "Verlassen"),
}

POOL = 40
GIF_1X1 = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def norm_key(path: str, query: str = "") -> str:
    """The route key: the path and its parameters sorted, so a client that reorders or
    re-encodes a query still reaches the same resource (as a real backend would)."""
    if not query:
        return path
    return path + "?" + urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


@dataclass
class Res:
    """One resource: what is served for a key on a host."""

    body: bytes
    ctype: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    media: bool = False  # hotlink-protected when the site is
    page: bool = False  # behind the site's gate (age gate, challenge)
    handler: str | None = None  # a dynamic behaviour the server implements


@dataclass
class Post:
    """One post of a site: its picture (or clip) and whose it is (None: a distractor)."""

    slug: str
    title: str
    image: Image.Image
    victim: str | None
    seed: int


@dataclass
class Site:
    """A site: its hosts, its routes, its gate and the copies planted on it."""

    index: int
    name: str
    pattern: str
    variant: str
    host: str
    lang: str
    extra_hosts: list[str] = field(default_factory=list)
    hotlink: bool = False
    gate: str | None = None  # "age-form", "age-link", "challenge"
    cookie: tuple[str, str] | None = None
    start_path: str = "/"
    planted: list[dict] = field(default_factory=list)
    distractor_urls: list[str] = field(default_factory=list)
    derived_urls: list[str] = field(default_factory=list)  # the victim's, unrecognisable


class Web:
    """All sites of one held-out web, their routes keyed by (host, key), and planted.json."""

    def __init__(self, seed: int, port: int, victims: list[tuple[str, Image.Image]],
                 sites_per_pattern: int) -> None:
        self.seed = seed
        self.port = port
        self.victims = victims
        self.routes: dict[tuple[str, str], tuple[Site, Res]] = {}
        self.sites: list[Site] = []
        self._extra = 0
        self._pool: dict[int, Image.Image] = {}
        self._distractor_seed = 500_000 + seed * 1000
        n = 0
        for pattern, builder, variants in PATTERNS:
            for k in range(sites_per_pattern):
                rng = random.Random(f"heldout-site-{seed}-{pattern}-{k}")
                host = f"127.10.{n // 250}.{n % 250 + 1}"
                victim_id, victim_img = victims[n % len(victims)]
                site = Site(index=n, name=f"s{n:03d}-{pattern}", pattern=pattern,
                            variant=variants[k % len(variants)], host=host,
                            lang=rng.choice(sorted(LANGS)), hotlink=rng.random() < 0.5)
                ctx = Ctx(self, site, rng)
                posts = ctx.posts(victim_id, victim_img)
                builder(ctx, posts)
                ctx.common()
                self.sites.append(site)
                n += 1

    def origin(self, host: str) -> str:
        """http://host:port, the origin of a host of this web."""
        return f"http://{host}:{self.port}"

    def new_extra_host(self) -> str:
        """A host of its own for a CDN or an image host (127.11.x.y)."""
        self._extra += 1
        return f"127.11.{self._extra // 250}.{self._extra % 250 + 1}"

    def pool_image(self, rng: random.Random) -> Image.Image:
        """One of POOL shared distractor scenes, made on first use."""
        i = rng.randrange(POOL)
        if i not in self._pool:
            self._pool[i] = media.scene(900_000 + self.seed * 1000 + i)
        return self._pool[i]

    def next_distractor_seed(self) -> int:
        """A fresh scene seed for a distractor picture."""
        self._distractor_seed += 1
        return self._distractor_seed

    def hosts(self) -> list[str]:
        """Every address a listener must be bound to."""
        return sorted({h for h, _ in self.routes})

    def planted(self) -> dict:
        """The contents of planted.json: every planted copy and every site."""
        return {
            "seed": self.seed,
            "port": self.port,
            "victims": [v for v, _ in self.victims],
            "planted": [p for s in self.sites for p in s.planted],
            "sites": [{"name": s.name, "pattern": s.pattern, "variant": s.variant,
                       "start_url": self.origin(s.host) + s.start_path,
                       "hosts": [s.host, *s.extra_hosts], "hotlink": s.hotlink,
                       "gate": s.gate, "lang": s.lang,
                       "distractor_urls": s.distractor_urls,
                       "derived_urls": s.derived_urls} for s in self.sites],
        }


class Ctx:
    """What a pattern builder uses to add routes to its site and record what it planted."""

    def __init__(self, web: Web, site: Site, rng: random.Random) -> None:
        self.web, self.site, self.rng = web, site, rng
        self.cdn: str | None = None
        self.victim_urls: list[str] = []

    # -- URLs and routes ---------------------------------------------------------------
    def url(self, path: str, host: str | None = None) -> str:
        """The absolute URL of a path on the site (or on another of its hosts)."""
        return self.web.origin(host or self.site.host) + path

    def add(self, path: str, body: bytes | str, ctype: str, *, host: str | None = None,
            media_: bool = False, page: bool = False, status: int = 200,
            headers: dict[str, str] | None = None, handler: str | None = None) -> str:
        """Serve body at path (with its query) on the site's host or host; returns the
        absolute URL."""
        data = body.encode() if isinstance(body, str) else body
        parts = urlsplit(path)
        key = norm_key(parts.path, parts.query)
        res = Res(data, ctype, status, headers or {}, media_, page, handler)
        self.web.routes[(host or self.site.host, key)] = (self.site, res)
        return self.url(path, host)

    def page(self, path: str, title: str, body: str, head: str = "", *,
             host: str | None = None, bare: bool = False) -> str:
        """An HTML page in the site's layout (header, nav, a dead banner, footer)."""
        lang = self.site.lang
        if bare:
            doc = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
                   f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>")
        else:
            doc = (
                f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{html.escape(title)} | {self.site.name}</title>\n{head}\n"
                f'<link rel="stylesheet" href="/static/css/app.{self.hexid(8)}.css">\n</head>\n'
                f'<body>\n<header class="site-header"><a href="/" class="logo">'
                f'<img src="/static/img/logo.png" alt="{self.site.name}" width="160"></a>\n'
                f'<nav><a href="/">Home</a> <a href="/members/">Members</a> '
                f'<a href="/tags/">Tags</a></nav></header>\n'
                f'<div class="ad-slot"><img src="/ads/728x90-{self.hexid(6)}.jpg" '
                f'width="728" height="90" alt=""></div>\n'
                f'<main>\n{body}\n</main>\n<footer><a href="/dmca">DMCA</a> · '
                f'<a href="/terms">Terms</a> · © 2024</footer>\n</body>\n</html>\n')
        return self.add(path, doc, "text/html; charset=utf-8", host=host, page=True)

    def hexid(self, n: int = 12) -> str:
        """A random-looking hex name, as upload pipelines give files."""
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def ref(self, url: str) -> str:
        """How the site's own markup names url: by path on its own host, in full elsewhere."""
        return self.rel(url) if urlsplit(url).hostname == self.site.host else url

    def rel(self, url: str) -> str:
        """The path (and query) of an absolute URL."""
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def media_host(self) -> str:
        """Where the site's pictures live: its own host, or (for about a third of sites) a
        CDN host of its own, as most sites of any size do."""
        if self.cdn is None:
            if self.rng.random() < 0.3:
                self.cdn = self.web.new_extra_host()
                self.site.extra_hosts.append(self.cdn)
            else:
                self.cdn = self.site.host
        return self.cdn

    # -- posts and media ---------------------------------------------------------------
    def posts(self, victim_id: str, victim_img: Image.Image, n: int = 3) -> list[Post]:
        """n posts, one (not the first) carrying the victim."""
        where = self.rng.randrange(1, n)
        out = []
        for i in range(n):
            seed = self.web.next_distractor_seed()
            if i == where:
                img, vid = media.reupload(victim_img, self.rng), victim_id
            else:
                img, vid = media.reupload(media.scene(seed), self.rng, min_scale=0.7), None
            slug = f"{self.rng.choice(media.WORDS)}-{self.rng.choice(media.WORDS)}-{seed % 997}"
            out.append(Post(slug, slug.replace("-", " ").title(), img, vid, seed))
        return out

    def distractor_image(self) -> Image.Image:
        """A picture that is nobody's, from the web's shared pool (filler shots of clips,
        frames of animations, ads): sites share such pictures, as real ones share memes."""
        return self.web.pool_image(self.rng)

    def file(self, post: Post | None, fmt: str = "jpeg", path: str | None = None,
             host: str | None = None, img: Image.Image | None = None,
             headers: dict[str, str] | None = None) -> str:
        """Encode the post's picture and serve it; record it as victim or distractor."""
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        host = host or self.media_host()
        if path is None:
            year, month = self.rng.randint(2019, 2024), self.rng.randint(1, 12)
            path = f"/uploads/{year}/{month:02d}/{self.hexid()}.{ext}"
        ctype = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
                 "png": "image/png", "gif": "image/gif"}[fmt]
        picture = img if img is not None else post.image if post is not None else None
        if picture is None:
            raise ValueError("a file needs a post or a picture")
        url = self.add(path, media.encode(picture, fmt, self.rng), ctype,
                       host=host, media_=True, headers=headers)
        self.record(post, url)
        return url

    def record(self, post: Post | None, url: str) -> None:
        """Note a URL whose bytes carry the post's picture (victim or distractor)."""
        if post is not None and post.victim:
            self.victim_urls.append(url)
        else:
            self.site.distractor_urls.append(url)

    def plant(self, post: Post, page_url: str, media_url: str, **extra: object) -> None:
        """Record the planted copy of this site for planted.json."""
        self.site.planted.append({
            "site": self.site.name, "pattern": self.site.pattern,
            "variant": self.site.variant, "page_url": page_url, "media_url": media_url,
            "victim": post.victim, "hosts": [self.site.host, *self.site.extra_hosts],
            "victim_urls": list(dict.fromkeys(self.victim_urls)),
            "hotlink": self.site.hotlink, "gate": self.site.gate, **extra})

    def clip(self, post: Post, width: int = 480, height: int = 360) -> media.Clip:
        """A 12-second clip: two other shots, the post's picture from 5 s to 9 s, one more."""
        a, b, c = (self.distractor_image() for _ in range(3))
        return media.Clip([(a, 3.0), (b, 2.0), (post.image, 4.0), (c, 3.0)], width, height)

    # -- the parts every site has --------------------------------------------------------
    def common(self) -> None:
        """Logo, stylesheet, robots.txt (or its absence), and nothing else: everything not
        routed is a 404, which is the site's 404 noise (dead banner, Members, Tags)."""
        logo = Image.new("RGB", (320, 80), (20, 20, 30))
        draw = ImageDraw.Draw(logo)
        draw.text((12, 18), self.site.name.upper(), fill=(240, 80, 120),
                  font=ImageFont.load_default(size=34))
        self.add("/static/img/logo.png", media.encode(logo, "png", self.rng), "image/png")
        has_robots = (self.site.host, "/robots.txt") in self.web.routes
        if not has_robots and self.rng.random() < 0.5:
            self.add("/robots.txt", "User-agent: *\nDisallow: /admin/\nDisallow: /search\n",
                     "text/plain")
        self.add("/dmca", f"<html lang='{self.site.lang}'><body><p>DMCA: abuse@"
                 f"{self.site.name}.example</p></body></html>", "text/html; charset=utf-8",
                 page=True)

    def home(self, posts: list[Post], link: Callable[[Post], str], intro: str = "") -> str:
        """A home page listing the posts (plus a link to a deleted post: 404 noise)."""
        items = "\n".join(
            f'<li><a href="{html.escape(link(p))}">{html.escape(p.title)}</a></li>'
            for p in posts)
        dead = self.rng.randint(90000, 99999)
        items += f'\n<li><a href="/post/{dead}/removed">[deleted]</a></li>'
        return self.page("/", "Latest",
                         f"{intro}<h1>Latest</h1>\n<ul class='posts'>\n{items}\n</ul>")


# ----------------------------------------------------------------------------------------
# Video patterns
# ----------------------------------------------------------------------------------------

def _hls_assets(ctx: Ctx, post: Post, encrypted: bool) -> tuple[str, list[str]]:
    """Master playlist -> variants -> TS segments under /hls/<id>/; returns the master URL
    and the URLs carrying the post's picture (the segments, playlists, key)."""
    vid = ctx.hexid(10)
    base = f"/hls/{vid}"
    host = ctx.site.host
    variants = [(480, 360, 900_000)] if encrypted else [(320, 240, 400_000), (480, 360, 900_000)]
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    urls: list[str] = []
    for w, h, bw in variants:
        playlist, segs = media.hls(ctx.clip(post, w, h))
        name = f"{h}p"
        if encrypted:
            key = hashlib.sha256(f"{ctx.web.seed}-{vid}".encode()).digest()[:16]
            iv = hashlib.md5(vid.encode()).digest()
            key_url = ctx.add(f"/hls/keys/{vid}.key", key, "application/octet-stream",
                              host=host, media_=True)
            segs = {n: media.aes128(b, key, iv) for n, b in segs.items()}
            playlist = playlist.replace(
                "#EXT-X-MEDIA-SEQUENCE:0",
                f'#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-KEY:METHOD=AES-128,URI="{ctx.rel(key_url)}",'
                f"IV=0x{iv.hex()}")
            urls.append(key_url)
        for n, b in segs.items():
            urls.append(ctx.add(f"{base}/{name}/{n}", b, "video/mp2t", host=host, media_=True))
        urls.append(ctx.add(f"{base}/{name}/index.m3u8", playlist,
                            "application/vnd.apple.mpegurl", host=host, media_=True))
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={bw},RESOLUTION={w}x{h},"
                  f'CODECS="avc1.64001e"', f"{name}/index.m3u8"]
    master = ctx.add(f"{base}/master.m3u8", "\n".join(lines) + "\n",
                     "application/vnd.apple.mpegurl", host=host, media_=True)
    return master, [master, *urls]


def _player_markup(ctx: Ctx, src: str, kind: str) -> tuple[str, str]:
    """(head, body) of a player page in one of the usual ways of configuring it."""
    poster = ""
    mime = "application/x-mpegURL"
    if kind == "videojs":
        setup = html.escape(json.dumps({"fluid": True, "sources": [{"src": src, "type": mime}]}))
        return ('<link href="https://vjs.zencdn.net/8.10.0/video-js.css" rel="stylesheet">',
                f'<video-js id="player" class="video-js vjs-big-play-centered" controls '
                f'preload="none"{poster} data-setup="{setup}"></video-js>\n'
                '<script src="https://vjs.zencdn.net/8.10.0/video.min.js"></script>')
    if kind == "hlsjs":
        return ("", '<video id="video" controls playsinline></video>\n'
                '<script src="https://cdn.jsdelivr.net/npm/hls.js@1"></script>\n'
                f'<script>\n  var videoSrc = {json.dumps(src)};\n'
                "  var video = document.getElementById('video');\n"
                "  if (Hls.isSupported()) {\n    var hls = new Hls();\n"
                "    hls.loadSource(videoSrc);\n    hls.attachMedia(video);\n"
                "  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {\n"
                "    video.src = videoSrc;\n  }\n</script>")
    # a JSON config in a data attribute, read by the site's own player bundle
    cfg = html.escape(json.dumps({"autoplay": False, "playlist": [{"title": "clip",
                      "sources": [{"file": src, "type": "hls"}]}]}))
    return ("", f'<div class="player-wrap" id="vp" data-player-config="{cfg}"></div>\n'
            f'<script src="/static/js/player.{ctx.hexid(8)}.js" defer></script>')


def p_hls(ctx: Ctx, posts: list[Post]) -> None:
    """A tube page: a JS player config pointing at a master playlist, variants, TS."""
    _video_site(ctx, posts, encrypted=False)


def p_hls_aes(ctx: Ctx, posts: list[Post]) -> None:
    """As HLS, but the one variant is AES-128 encrypted with a fetchable key."""
    _video_site(ctx, posts, encrypted=True)


def _video_site(ctx: Ctx, posts: list[Post], encrypted: bool) -> None:
    posts = _with_victim_last(posts)
    links = {}
    for p in posts:
        master, urls = _hls_assets(ctx, p, encrypted)
        for u in urls:
            ctx.record(p, u)
        kind = ctx.site.variant if not encrypted else "hlsjs"
        head, body = _player_markup(ctx, ctx.rel(master), kind)
        path = f"/videos/{p.seed}/{p.slug}"
        page = ctx.page(path, p.title, f"<h1>{html.escape(p.title)}</h1>\n{body}", head)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, master, seconds=[5, 9])
    ctx.home(posts, lambda p: links[p.slug])


def _with_victim_last(posts: list[Post]) -> list[Post]:
    """Keep two posts of three, the victim's among them (video sites are costlier)."""
    victim = next(p for p in posts if p.victim)
    other = next(p for p in posts if not p.victim)
    return [other, victim]


def p_dash(ctx: Ctx, posts: list[Post]) -> None:
    """A DASH page: dash.js with an MPD (SegmentTemplate) -> fMP4 init + media segments."""
    links = {}
    for p in _with_victim_last(posts):
        vid = ctx.hexid(10)
        mpd, files = media.dash(ctx.clip(p))
        urls = [ctx.add(f"/dash/{vid}/{n}", b, "video/mp4" if n.endswith(".mp4")
                        else "video/iso.segment", media_=True) for n, b in files.items()]
        manifest = ctx.add(f"/dash/{vid}/manifest.mpd", mpd, "application/dash+xml",
                           media_=True)
        for u in [manifest, *urls]:
            ctx.record(p, u)
        if ctx.site.variant == "data-attr":
            body = (f'<video data-dashjs-player autoplay controls '
                    f'src="{ctx.rel(manifest)}"></video>\n'
                    '<script src="https://cdn.dashjs.org/latest/dash.all.min.js"></script>')
        else:
            body = ('<video id="videoPlayer" controls></video>\n'
                    '<script src="https://cdn.dashjs.org/latest/dash.all.min.js"></script>\n'
                    f'<script>(function(){{var url = "{ctx.rel(manifest)}";'
                    'var player = dashjs.MediaPlayer().create();'
                    'player.initialize(document.querySelector("#videoPlayer"), url, false);'
                    '})();</script>')
        path = f"/watch/{vid}"
        page = ctx.page(path, p.title, f"<h1>{html.escape(p.title)}</h1>\n{body}")
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, manifest, seconds=[5, 9])
    ctx.home(_with_victim_last(posts), lambda p: links[p.slug])


def p_og_video(ctx: Ctx, posts: list[Post]) -> None:
    """Only Open Graph names the video (the player is built by script); og:image is a
    frame from the opening, not the victim."""
    links = {}
    for p in _with_victim_last(posts):
        vid = ctx.hexid(10)
        clip = ctx.clip(p)
        url = ctx.add(f"/media/videos/{vid}_480p.mp4", media.mp4(clip), "video/mp4",
                      media_=True)
        ctx.record(p, url)
        thumb = ctx.file(None, img=clip.shots[0][0],
                         path=f"/media/thumbs/{vid}.jpg")
        head = (f'<meta property="og:type" content="video.other">\n'
                f'<meta property="og:title" content="{html.escape(p.title)}">\n'
                f'<meta property="og:image" content="{thumb}">\n'
                f'<meta property="og:video" content="{url}">\n'
                f'<meta property="og:video:secure_url" content="{url}">\n'
                f'<meta property="og:video:type" content="video/mp4">\n'
                f'<meta property="og:video:width" content="480">\n'
                f'<meta property="og:video:height" content="360">')
        body = (f'<h1>{html.escape(p.title)}</h1><div id="player" data-video-id="{vid}">'
                f'</div><script src="/static/js/player.{ctx.hexid(8)}.js" defer></script>')
        path = f"/v/{vid}/"
        page = ctx.page(path, p.title, body, head)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, url, seconds=[5, 9])
    ctx.home(_with_victim_last(posts), lambda p: links[p.slug])


def p_video_poster(ctx: Ctx, posts: list[Post]) -> None:
    """The victim is the <video poster>; the video itself (a trailer) shows other scenes."""
    links = {}
    for p in posts:
        vid = ctx.hexid(10)
        poster = ctx.file(p, path=f"/contents/videos_screenshots/{vid}/preview.jpg")
        clip = media.Clip([(ctx.distractor_image(), 3.0), (ctx.distractor_image(), 3.0)],
                          320, 240)
        mp4 = ctx.add(f"/get_file/{vid}/trailer.mp4", media.mp4(clip), "video/mp4",
                      media_=True)
        ctx.record(None, mp4)
        body = (f'<h1>{html.escape(p.title)}</h1>\n<video controls preload="none" '
                f'poster="{_src(ctx, poster)}" '
                f'width="640"><source src="{ctx.rel(mp4)}" type="video/mp4"></video>')
        path = f"/videos/{vid}/{p.slug}/"
        page = ctx.page(path, p.title, body)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, poster)
    ctx.home(posts, lambda p: links[p.slug])


def p_iframe_embed(ctx: Ctx, posts: list[Post]) -> None:
    """The watch page embeds /embed/<id> in an iframe; the embed page holds the player."""
    links = {}
    for p in _with_victim_last(posts):
        vid = ctx.hexid(10)
        url = ctx.add(f"/media/{vid}/720.mp4", media.mp4(ctx.clip(p)), "video/mp4",
                      media_=True)
        ctx.record(p, url)
        if ctx.site.variant == "video-tag":
            inner = (f'<video id="v" controls playsinline style="width:100%">'
                     f'<source src="{ctx.rel(url)}" type="video/mp4"></video>')
        else:
            inner = ('<div id="player"></div>\n<script src="https://cdn.jwplayer.com/libraries/'
                     'abc123.js"></script>\n<script>jwplayer("player").setup('
                     + json.dumps({"file": ctx.rel(url), "image": "", "width": "100%",
                                   "aspectratio": "4:3"}) + ");</script>")
        embed = ctx.page(f"/embed/{vid}", p.title, inner, bare=True)
        body = (f'<h1>{html.escape(p.title)}</h1>\n<div class="embed-responsive">'
                f'<iframe src="{ctx.rel(embed)}" width="640" height="480" frameborder="0" '
                f'scrolling="no" allowfullscreen></iframe></div>')
        path = f"/watch/{vid}"
        page = ctx.page(path, p.title, body)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, url, embed_url=embed, seconds=[5, 9])
    ctx.home(_with_victim_last(posts), lambda p: links[p.slug])


# ----------------------------------------------------------------------------------------
# Client-rendered and app-state patterns
# ----------------------------------------------------------------------------------------

def p_spa_gallery(ctx: Ctx, posts: list[Post]) -> None:
    """An empty #root and a bundle that fetches a JSON API and inserts <img>."""
    album = ctx.hexid(8)
    api = f"/api/v2/albums/{album}/photos"
    data = []
    for p in posts:
        url = ctx.file(p, path=f"/media/photos/{ctx.hexid()}.jpg")
        data.append({"type": "photo", "id": str(p.seed),
                     "attributes": {"title": p.title, "image_url": ctx.ref(url),
                                    "width": p.image.width, "height": p.image.height}})
    body = json.dumps({"data": data, "meta": {"total": len(data), "limit": 24}})
    ctx.add(api, body, "application/json")
    ctx.add(f"{api}?limit=24", body, "application/json")
    bundle = (
        '!function(){"use strict";var e=document.getElementById("root"),'
        f't="{api}";function n(n){{var o=document.createElement("figure"),'
        'a=document.createElement("img");a.src=n.attributes.image_url,a.alt=n.attributes.title,'
        'a.loading="lazy",o.appendChild(a),e.appendChild(o)}fetch(t+"?limit=24",{headers:'
        '{Accept:"application/json"},credentials:"same-origin"}).then(function(e){return '
        'e.json()}).then(function(e){e.data.forEach(n)}).catch(function(){e.textContent='
        '"Failed to load"})}();\n//# sourceMappingURL=main.js.map\n')
    js = ctx.add(f"/static/js/main.{ctx.hexid(8)}.js", bundle, "application/javascript")
    page = ctx.add("/", f'<!DOCTYPE html><html lang="{ctx.site.lang}"><head><meta charset='
                   f'"utf-8"><title>Gallery</title><script defer src="{ctx.rel(js)}"></script>'
                   '</head><body><noscript>You need to enable JavaScript to run this app.'
                   '</noscript><div id="root"></div></body></html>', "text/html; charset=utf-8",
                   page=True)
    victim = next(p for p in posts if p.victim)
    ctx.plant(victim, page, ctx.victim_urls[0], api_url=ctx.url(api))


def p_next_data(ctx: Ctx, posts: list[Post]) -> None:
    """Next.js: the post lives in __NEXT_DATA__; images through /_next/image."""
    build = ctx.hexid(21)
    links = {}
    for p in posts:
        up = f"/uploads/{ctx.hexid()}.jpg"
        raw = ctx.file(p, path=up, host=ctx.site.host)
        opt = ctx.file(p, fmt="webp", host=ctx.site.host,
                       path=f"/_next/image?url={quote(up, safe='')}&w=1080&q=75")
        state = {"props": {"pageProps": {"post": {
            "id": p.seed, "title": p.title, "cover": {"src": up, "width": p.image.width,
                                                      "height": p.image.height},
            "author": {"name": "anon", "avatar": None}}}, "__N_SSP": True},
            "page": "/post/[id]", "query": {"id": str(p.seed)}, "buildId": build,
            "isFallback": False, "gssp": True, "scriptLoader": []}
        path = f"/post/{p.seed}"
        body = (f'<div id="__next"><div class="post-skeleton" aria-busy="true"></div></div>'
                f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}'
                f'</script><script src="/_next/static/chunks/main-{ctx.hexid(16)}.js" '
                f'defer></script>')
        page = ctx.page(path, p.title, body, bare=True)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, raw, optimized_url=opt)
    ctx.home(posts, lambda p: links[p.slug])


def p_nuxt(ctx: Ctx, posts: list[Post]) -> None:
    """Nuxt 2: window.__NUXT__ as an IIFE whose arguments hold the paths, "/" as \\u002F."""
    links = {}
    for p in posts:
        up = f"/storage/media/{ctx.hexid(2)}/{ctx.hexid()}.jpg"
        raw = ctx.file(p, path=up, host=ctx.site.host)
        esc = up.replace("/", "\\u002F")
        body = (
            '<div id="__nuxt"><div id="__layout"><div class="loading"></div></div></div>'
            '<script>window.__NUXT__=(function(a,b,c,d,e){return {layout:"default",'
            'data:[{post:{id:d,title:b,lang:e,media:[{type:"image",src:a,alt:b}],'
            'related:[]}}],fetch:{},error:c,state:{auth:{user:c,loggedIn:false}},'
            f'serverRendered:true,routePath:"\\u002Fp\\u002F{p.seed}",config:{{}}}}}}'
            f'("{esc}","{p.title}",null,{p.seed},"{ctx.site.lang}"));</script>'
            f'<script src="/_nuxt/{ctx.hexid(8)}.js" defer></script>')
        path = f"/p/{p.seed}"
        page = ctx.page(path, p.title, body, bare=True)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, raw)
    ctx.home(posts, lambda p: links[p.slug])


def p_initial_state(ctx: Ctx, posts: list[Post]) -> None:
    """window.__INITIAL_STATE__ (a Redux store) with \\/ escapes and relative paths."""
    links = {}
    for p in posts:
        up = f"/i/full/{ctx.hexid()}.jpg"
        raw = ctx.file(p, path=up, host=ctx.site.host)
        state = {"router": {"location": {"pathname": f"/gallery/{p.seed}"}},
                 "entities": {"images": {str(p.seed): {"id": p.seed, "title": p.title,
                                                       "src": up, "w": p.image.width,
                                                       "h": p.image.height}}},
                 "ui": {"nsfw": True, "blurred": False}}
        blob = json.dumps(state).replace("/", "\\/")
        body = (f'<div id="app"></div><script>window.__INITIAL_STATE__={blob};</script>'
                f'<script src="/assets/app.{ctx.hexid(8)}.js"></script>')
        path = f"/gallery/{p.seed}"
        page = ctx.page(path, p.title, body, bare=True)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, raw)
    ctx.home(posts, lambda p: links[p.slug])


def p_jsonld(ctx: Ctx, posts: list[Post]) -> None:
    """Only JSON-LD ImageObject names the picture; the viewer is drawn by script."""
    links = {}
    for p in posts:
        raw = ctx.file(p, path=f"/content/{ctx.hexid()}.jpg")
        content = raw if ctx.site.variant == "absolute" else ctx.ref(raw)
        obj = {"@context": "https://schema.org", "@type": "ImageObject",
               "contentUrl": content, "name": p.title, "encodingFormat": "image/jpeg",
               "width": p.image.width, "height": p.image.height,
               "uploadDate": "2024-03-02T11:20:00+00:00"}
        if ctx.site.variant == "graph":
            obj = {"@context": "https://schema.org", "@graph": [
                {"@type": "WebPage", "@id": ctx.url(f"/photo/{p.seed}"), "name": p.title},
                {k: v for k, v in obj.items() if k != "@context"}]}
        head = f'<script type="application/ld+json">{json.dumps(obj)}</script>'
        body = (f'<h1>{html.escape(p.title)}</h1><canvas id="viewer" width="640" '
                f'height="480" data-photo="{p.seed}"></canvas>')
        path = f"/photo/{p.seed}"
        page = ctx.page(path, p.title, body, head)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, raw)
    ctx.home(posts, lambda p: links[p.slug])


def p_infinite_scroll(ctx: Ctx, posts: list[Post]) -> None:
    """A feed: the HTML shows API page 1; a cursor API gives pages 2 and 3 (the victim's)."""
    victim = next(p for p in posts if p.victim)
    pages: list[list[Post]] = [
        [Post("x", "x", ctx.distractor_image(), None, 0) for _ in range(3)],
        [p for p in posts if not p.victim],
        [victim, Post("y", "y", ctx.distractor_image(), None, 0)],
    ]
    cursors = [base64.urlsafe_b64encode(json.dumps({"after": ctx.rng.randint(10**6, 10**7),
                                                     "v": 2}).encode()).decode().rstrip("=")
               for _ in range(3)]
    items_by_page = []
    for page_posts in pages:
        items = []
        for p in page_posts:
            url = ctx.file(p, path=f"/m/{ctx.hexid(2)}/{ctx.hexid()}.jpg")
            items.append({"id": ctx.hexid(8), "caption": p.title,
                          "media": {"type": "image", "url": ctx.ref(url)}})
        items_by_page.append(items)
    for i, items in enumerate(items_by_page):
        nxt = cursors[i + 1] if i + 1 < len(pages) else None
        body = json.dumps({"items": items, "next_cursor": nxt, "has_more": nxt is not None})
        ctx.add(f"/api/feed?cursor={cursors[i]}", body, "application/json")
        if i == 0:
            ctx.add("/api/feed", body, "application/json")
    first = "\n".join(f'<article class="card"><img src="{html.escape(it["media"]["url"])}" '
                      f'alt=""></article>' for it in items_by_page[0])
    script = (
        "<script>(function(){var feed=document.getElementById('feed');"
        "var loading=false;function more(){var c=feed.dataset.cursor;if(!c||loading)return;"
        "loading=true;fetch(feed.dataset.endpoint+'?cursor='+encodeURIComponent(c))"
        ".then(function(r){return r.json()}).then(function(d){d.items.forEach(function(it){"
        "var a=document.createElement('article');a.className='card';var i=new Image();"
        "i.src=it.media.url;a.appendChild(i);feed.appendChild(a)});"
        "feed.dataset.cursor=d.next_cursor||'';loading=false})}"
        "new IntersectionObserver(function(e){if(e[0].isIntersecting)more()})"
        ".observe(document.getElementById('sentinel'))})();</script>")
    body = (f'<div id="feed" data-endpoint="/api/feed" data-cursor="{cursors[1]}">\n{first}\n'
            f'</div><div id="sentinel"></div>{script}')
    page = ctx.page("/", "Feed", body)
    ctx.plant(victim, page, ctx.victim_urls[0],
              api_url=ctx.url(f"/api/feed?cursor={cursors[2]}"), api_page=3)


# ----------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------

def _plain_gallery(ctx: Ctx, posts: list[Post], fmt: str = "jpeg") -> None:
    """Home -> post pages with a plain <img>: the content behind a gate."""
    links = {}
    for p in posts:
        raw = ctx.file(p, fmt=fmt)
        src = ctx.rel(raw) if urlsplit(raw).hostname == ctx.site.host else raw
        path = f"/post/{p.seed}/{p.slug}"
        page = ctx.page(path, p.title, f'<h1>{html.escape(p.title)}</h1>\n<figure><img src='
                        f'"{html.escape(src)}" alt="{html.escape(p.title)}"></figure>')
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, raw)
    ctx.home(posts, lambda p: links[p.slug])


def p_age_gate(ctx: Ctx, posts: list[Post]) -> None:
    """Every page 302s to a confirm page until a cookie is set by a form POST or a link."""
    ctx.site.gate = "age-form" if ctx.site.variant == "form" else "age-link"
    ctx.site.cookie = ("age_verified", "1")
    title, question, yes, no = LANGS[ctx.site.lang]
    if ctx.site.gate == "age-form":
        form = (f'<form method="post" action="/age-verification">'
                f'<input type="hidden" name="return" value="__RETURN_HTML__">'
                f'<button type="submit" name="confirm" value="yes">{yes}</button></form>')
    else:
        form = f'<a class="btn" href="/age-verification/accept?return=__RETURN_URL__">{yes}</a>'
    body = (f'<div class="age-gate"><h1>{title}</h1><p>{question}</p>{form}'
            f'<a href="https://www.google.com/">{no}</a></div>')
    doc = (f'<!DOCTYPE html><html lang="{ctx.site.lang}"><head><meta charset="utf-8">'
           f'<title>{title}</title></head><body>{body}</body></html>')
    ctx.add("/age-verification", doc, "text/html; charset=utf-8", handler="age-confirm")
    ctx.add("/age-verification/accept", "", "text/html", handler="age-accept")
    _plain_gallery(ctx, posts)


def p_js_challenge(ctx: Ctx, posts: list[Post]) -> None:
    """A Cloudflare-style interstitial: a script computes the clearance cookie and reloads."""
    a, b, c = ctx.rng.randint(1000, 9999), ctx.rng.randint(1000, 9999), ctx.rng.randint(1, 999)
    value = a * b + c
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    token = ""
    while value:
        value, r = divmod(value, 36)
        token = digits[r] + token
    ctx.site.gate = "challenge"
    ctx.site.cookie = ("cf_clearance", token)
    doc = (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        '<meta name="robots" content="noindex,nofollow"></head><body>'
        '<div class="main-wrapper" role="main"><div class="main-content">'
        '<h1 class="zone-name-title h1">Checking if the site connection is secure</h1>'
        '<noscript><div class="h2"><span>Enable JavaScript and cookies to continue</span>'
        '</div></noscript></div></div><script>(function(){'
        f'var a={a},b={b},c={c};var t=(a*b+c).toString(36);'
        'document.cookie="cf_clearance="+t+"; path=/; max-age=1800; SameSite=Lax";'
        'setTimeout(function(){location.reload();},1200);})();</script></body></html>')
    ctx.add("/__challenge", doc, "text/html; charset=UTF-8", status=503,
            headers={"Cache-Control": "no-cache", "Server": "cloudflare"},
            handler="challenge-page")
    _plain_gallery(ctx, posts)


def p_sitemap_only(ctx: Ctx, posts: list[Post]) -> None:
    """robots.txt -> sitemap index -> gzipped sitemaps with <image:loc>; the home page links
    nowhere useful."""
    urls = []
    for p in posts:
        raw = ctx.file(p)
        path = f"/{ctx.rng.randint(2021, 2024)}/{ctx.rng.randint(1, 12):02d}/{p.slug}/"
        src = ctx.rel(raw) if urlsplit(raw).hostname == ctx.site.host else raw
        page = ctx.page(path, p.title, f'<article><h1>{html.escape(p.title)}</h1><img src="'
                        f'{html.escape(src)}" alt=""></article>')
        urls.append((page, raw))
        if p.victim:
            ctx.plant(p, page, raw)
    ns = ('xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
          'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"')
    entries = "".join(f"<url><loc>{html.escape(u)}</loc><lastmod>2024-04-0{i + 1}</lastmod>"
                      f"<image:image><image:loc>{html.escape(m)}</image:loc></image:image>"
                      f"</url>" for i, (u, m) in enumerate(urls))
    posts_xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {ns}>{entries}</urlset>\n'
    pages_xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {ns}><url><loc>'
                 f'{ctx.url("/about/")}</loc></url></urlset>\n')
    sm1 = ctx.add("/sitemaps/post-sitemap1.xml.gz", gzip.compress(posts_xml.encode(), mtime=0),
                  "application/x-gzip")
    sm2 = ctx.add("/sitemaps/page-sitemap.xml.gz", gzip.compress(pages_xml.encode(), mtime=0),
                  "application/x-gzip")
    index = ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.'
             'sitemaps.org/schemas/sitemap/0.9">' + "".join(
                 f"<sitemap><loc>{u}</loc><lastmod>2024-04-05T10:00:00+00:00</lastmod>"
                 f"</sitemap>" for u in (sm1, sm2)) + "</sitemapindex>\n")
    idx = ctx.add("/sitemap_index.xml", index, "application/xml")
    ctx.add("/robots.txt", f"User-agent: *\nDisallow: /wp-admin/\nAllow: /\n\nSitemap: {idx}\n",
            "text/plain")
    ctx.page("/about/", "About", "<p>A personal blog. Nothing to see here.</p>")
    ctx.page("/", "Home", '<p>Coming soon.</p><a href="/about/">About</a>')


# ----------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------

def p_webp(ctx: Ctx, posts: list[Post]) -> None:
    """Plain <img>, WebP files."""
    _plain_gallery(ctx, posts, "webp")


def p_avif(ctx: Ctx, posts: list[Post]) -> None:
    """Plain <img>, AVIF files."""
    _plain_gallery(ctx, posts, "avif")


def _animated_site(ctx: Ctx, posts: list[Post], fmt: str) -> None:
    ext = {"gif": "gif", "apng": "png", "webp": "webp"}[fmt]
    ctype = {"gif": "image/gif", "apng": "image/apng", "webp": "image/webp"}[fmt]
    links = {}
    for p in posts:
        frames = [ctx.distractor_image(), ctx.distractor_image(), p.image,
                  ctx.distractor_image()]
        frames = [media.fit(f, 400, 300) for f in frames]
        data = media.animated(frames, fmt, [900, 900, 1500, 900])
        url = ctx.add(f"/gifs/{ctx.hexid()}.{ext}", data, ctype, host=ctx.media_host(),
                      media_=True)
        ctx.record(p, url)
        src = ctx.rel(url) if urlsplit(url).hostname == ctx.site.host else url
        path = f"/g/{p.seed}"
        page = ctx.page(path, p.title, f'<h1>{html.escape(p.title)}</h1><img class="anim" '
                        f'src="{html.escape(src)}" width="400" height="300" alt="">')
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, url, frame=2)
    ctx.home(posts, lambda p: links[p.slug])


def p_webp_animated(ctx: Ctx, posts: list[Post]) -> None:
    """Animated WebP, the victim in frame 3 of 4."""
    _animated_site(ctx, posts, "webp")


def p_gif_animated(ctx: Ctx, posts: list[Post]) -> None:
    """Animated GIF, the victim in frame 3 of 4."""
    _animated_site(ctx, posts, "gif")


def p_apng(ctx: Ctx, posts: list[Post]) -> None:
    """APNG (a .png that animates), the victim in frame 3 of 4."""
    _animated_site(ctx, posts, "apng")


def p_data_uri(ctx: Ctx, posts: list[Post]) -> None:
    """The picture inline in the HTML as a data: URI (paste-bin and e-mail-archive style)."""
    links = {}
    for p in posts:
        b64 = base64.b64encode(media.encode(p.image, "jpeg", ctx.rng)).decode()
        path = f"/paste/{ctx.hexid(8)}"
        page = ctx.page(path, p.title, f'<h1>{html.escape(p.title)}</h1><img alt="" '
                        f'src="data:image/jpeg;base64,{b64}">')
        links[p.slug] = path
        ctx.record(p, page)
        if p.victim:
            ctx.plant(p, page, "data:image/jpeg;base64,...")
    ctx.home(posts, lambda p: links[p.slug])


# ----------------------------------------------------------------------------------------
# Image hosts and viewers
# ----------------------------------------------------------------------------------------

def _viewer(ctx: Ctx, p: Post, host: str, code: str) -> tuple[str, str]:
    """An image-host viewer page whose main content is one picture (plus an ad)."""
    img = ctx.file(p, path=f"/images/{code[:2]}/{code}.jpg", host=host)
    ad = ctx.file(None, path=f"/banners/{ctx.hexid(6)}.jpg", host=host,
                  img=ctx.distractor_image().resize((300, 250)))
    body = (f'<div class="ad"><a href="/go/ad"><img src="{ctx.rel(ad)}" width="300" '
            f'height="250"></a></div><div id="image-viewer-container">'
            f'<img id="image-viewer" class="main-image" src="{ctx.rel(img)}" alt="{code}.jpg">'
            f'</div><p><a href="{ctx.rel(img)}" download>Download</a></p>')
    page = ctx.page(f"/{code}", f"{code}.jpg", body, host=host, bare=True,
                    head=f'<meta property="og:title" content="{code}.jpg">')
    return page, img


def p_viewer_meta_refresh(ctx: Ctx, posts: list[Post]) -> None:
    """Post -> /out/<code>, an interstitial that meta-refreshes to the viewer page."""
    _viewer_site(ctx, posts, "meta")


def p_viewer_js_location(ctx: Ctx, posts: list[Post]) -> None:
    """Post -> /out/<code>, an interstitial whose script sets location."""
    _viewer_site(ctx, posts, "js")


def p_viewer_cross_host(ctx: Ctx, posts: list[Post]) -> None:
    """A forum post links (text only) to another host's viewer page with the picture."""
    _viewer_site(ctx, posts, "cross")


def _viewer_site(ctx: Ctx, posts: list[Post], how: str) -> None:
    links = {}
    imghost = ctx.web.new_extra_host() if how == "cross" else ctx.site.host
    if how == "cross":
        ctx.site.extra_hosts.append(imghost)
        ctx.page("/", "ImgBox", "<h1>Upload images</h1><form><input type=file></form>",
                 host=imghost, bare=True)
    for p in posts:
        code = ctx.hexid(8)
        viewer, img = _viewer(ctx, p, imghost, code if how == "cross" else f"v{code}")
        if how == "meta":
            target = f"{ctx.rel(viewer)}"
            inter = ctx.page(f"/out/{code}", "Redirecting", '<p>Redirecting to your image…'
                             '</p>', bare=True, head=f'<meta http-equiv="refresh" content="0; '
                             f'url={target}">')
            link = ctx.rel(inter)
        elif how == "js":
            js = (f'window.location.replace("{ctx.rel(viewer)}");' if ctx.site.variant == "replace"
                  else f"setTimeout(function(){{window.location.href='{ctx.rel(viewer)}'}},500);")
            inter = ctx.page(f"/out/{code}", "Loading", f"<p>Loading…</p><script>{js}</script>",
                             bare=True)
            link = ctx.rel(inter)
        else:
            link = viewer
        path = f"/threads/{p.slug}.{p.seed}/"
        page = ctx.page(path, p.title, f'<article class="message"><div class="bbWrapper">'
                        f'Fresh set, enjoy<br><a href="{html.escape(link)}" target="_blank" '
                        f'rel="noopener">IMG_{p.seed % 9000 + 1000}.JPG</a></div></article>')
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, img, viewer_url=viewer)
    ctx.home(posts, lambda p: links[p.slug])


# ----------------------------------------------------------------------------------------
# Responsive, lazy and styled markup
# ----------------------------------------------------------------------------------------

def _placeholder(ctx: Ctx, color: tuple[int, int, int] = (200, 200, 200)) -> str:
    """A small grey 'no preview' picture on the site's host, shared by its posts."""
    path = "/static/img/no-preview.jpg"
    img = Image.new("RGB", (320, 240), color)
    ImageDraw.Draw(img).text((110, 110), "no preview", fill=(120, 120, 120))
    return ctx.add(path, media.encode(img, "jpeg", ctx.rng), "image/jpeg")


def _markup_site(ctx: Ctx, posts: list[Post], render: Callable[[Post], tuple[str, str, str]]
                 ) -> None:
    """Post pages whose markup comes from render(post) -> (body, head, planted media URL)."""
    links = {}
    for p in posts:
        body, head, murl = render(p)
        path = f"/post/{p.seed}/{p.slug}"
        page = ctx.page(path, p.title, f"<h1>{html.escape(p.title)}</h1>\n{body}", head)
        links[p.slug] = path
        if p.victim:
            ctx.plant(p, page, murl)
    ctx.home(posts, lambda p: links[p.slug])


def _src(ctx: Ctx, url: str) -> str:
    """url as the site's markup writes it, HTML-escaped."""
    return html.escape(ctx.ref(url))


def p_srcset(ctx: Ctx, posts: list[Post]) -> None:
    """<img srcset>: src is a tiny dominant-colour placeholder, the picture only in the
    srcset candidates (a 160w thumbnail and the full size)."""
    def render(p: Post) -> tuple[str, str, str]:
        dom = p.image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        ph = ctx.add(f"/static/ph/{ctx.hexid(6)}.jpg",
                     media.encode(Image.new("RGB", (16, 12), dom), "jpeg", ctx.rng),
                     "image/jpeg")
        small_img = p.image.resize((160, max(2, int(160 * p.image.height / p.image.width))))
        base = f"/wp-content/uploads/2024/0{ctx.rng.randint(1, 9)}/{ctx.hexid()}"
        small = ctx.file(p, path=f"{base}-160x120.jpg", img=small_img)
        large = ctx.file(p, path=f"{base}.jpg")
        body = (f'<img width="{p.image.width}" height="{p.image.height}" src="{_src(ctx, ph)}" '
                f'class="attachment-full size-full" alt="" decoding="async" '
                f'srcset="{_src(ctx, small)} 160w, {_src(ctx, large)} {p.image.width}w" '
                f'sizes="(max-width: {p.image.width}px) 100vw, {p.image.width}px">')
        return body, "", large
    _markup_site(ctx, posts, render)


def p_picture_source(ctx: Ctx, posts: list[Post]) -> None:
    """<picture> with AVIF and WebP <source>s; the <img> fallback is a 'no preview'."""
    ph = _placeholder(ctx)

    def render(p: Post) -> tuple[str, str, str]:
        name = f"/img/{ctx.hexid()}"
        avif = ctx.file(p, fmt="avif", path=f"{name}.avif")
        webp = ctx.file(p, fmt="webp", path=f"{name}.webp")
        webp2 = ctx.file(p, fmt="webp", path=f"{name}@2x.webp")
        body = (f'<picture><source type="image/avif" srcset="{_src(ctx, avif)}">'
                f'<source type="image/webp" srcset="{_src(ctx, webp)} 1x, {_src(ctx, webp2)} 2x">'
                f'<img src="{_src(ctx, ph)}" alt="" width="640" height="480"></picture>')
        return body, "", webp
    _markup_site(ctx, posts, render)


def p_lazy(ctx: Ctx, posts: list[Post]) -> None:
    """Lazy loading: a placeholder src and the real URL in data-src, data-lazy or
    data-original (with loading=lazy)."""
    ph = ctx.add("/static/img/blank.gif", base64.b64decode(GIF_1X1.split(",")[1]), "image/gif")

    def render(p: Post) -> tuple[str, str, str]:
        url = ctx.file(p)
        v = ctx.site.variant
        if v == "data-src":
            body = (f'<img class="lazyload" src="{GIF_1X1}" data-src="{_src(ctx, url)}" '
                    f'alt=""><noscript>see the picture</noscript>')
        elif v == "data-lazy":
            body = f'<img class="lazy" src="{_src(ctx, ph)}" data-lazy="{_src(ctx, url)}" alt="">'
        else:
            body = (f'<img loading="lazy" src="/static/img/loading.svg" '
                    f'data-original="{_src(ctx, url)}" class="lazy-img" alt="">')
        return body, "", url
    _markup_site(ctx, posts, render)


def p_css_background(ctx: Ctx, posts: list[Post]) -> None:
    """The picture is a CSS background-image in a style attribute."""
    def render(p: Post) -> tuple[str, str, str]:
        url = ctx.file(p)
        quoted = (f"&quot;{_src(ctx, url)}&quot;" if ctx.site.variant == "quot"
                  else f"'{_src(ctx, url)}'")
        body = (f'<div class="photo-frame" role="img" aria-label="{html.escape(p.title)}" '
                f'style="width:640px;height:480px;background-image: url({quoted});'
                f'background-size:cover;background-position:center"></div>')
        return body, "", url
    _markup_site(ctx, posts, render)


def p_og_image_only(ctx: Ctx, posts: list[Post]) -> None:
    """Only og:image names the picture; the body is a members-only wall."""
    def render(p: Post) -> tuple[str, str, str]:
        url = ctx.file(p)
        head = (f'<meta property="og:type" content="article">\n<meta property="og:image" '
                f'content="{html.escape(url)}">\n<meta property="og:image:width" '
                f'content="{p.image.width}">')
        body = ('<div class="paywall"><p>This post is for members only.</p>'
                '<a href="/login">Log in</a></div>')
        return body, head, url
    _markup_site(ctx, posts, render)


# ----------------------------------------------------------------------------------------
# Forum and gallery extras
# ----------------------------------------------------------------------------------------

def p_forum_attachment(ctx: Ctx, posts: list[Post]) -> None:
    """vBulletin: 'Attached Images' as text links to attachment.php?attachmentid=N (no
    extension; Content-Disposition names the file), behind a paperclip icon."""
    icon = Image.new("RGB", (16, 16), (230, 230, 230))
    ctx.add("/images/attach/jpg.gif", media.encode(icon, "gif", ctx.rng), "image/gif")
    links = {}
    for i, p in enumerate(posts):
        aid = 100000 + ctx.rng.randint(0, 899999)
        name = f"IMG_{p.seed % 9000 + 1000}.jpg"
        url = ctx.file(p, host=ctx.site.host,
                       path=f"/attachment.php?attachmentid={aid}&d=1712345678",
                       headers={"Content-Disposition": f'inline; filename="{name}"'})
        tid = 5000 + i * 17 + ctx.rng.randint(0, 16)
        body = (
            f'<table class="tborder" id="post{aid}"><tr><td class="alt1">'
            f'<div id="post_message_{aid}">{html.escape(p.title)}</div>'
            '<div style="padding:6px"><fieldset class="fieldset"><legend>Attached Images'
            '</legend><table cellpadding="0" cellspacing="3" border="0"><tr>'
            '<td><img class="inlineimg" src="images/attach/jpg.gif" alt="File Type: jpg" '
            'width="16" height="16" border="0" style="vertical-align:baseline"></td>'
            f'<td><a href="attachment.php?attachmentid={aid}&amp;d=1712345678" '
            f'target="_blank">{name}</a> ({ctx.rng.randint(80, 400)}.{ctx.rng.randint(0, 9)} '
            f'KB, {ctx.rng.randint(3, 900)} views)</td></tr></table></fieldset></div>'
            '</td></tr></table>')
        path = f"/showthread.php?t={tid}"
        page = ctx.page(path, p.title, body)
        links[p.slug] = f"showthread.php?t={tid}"
        if p.victim:
            ctx.plant(p, page, url)
    ctx.home(posts, lambda p: links[p.slug])


def p_lightbox(ctx: Ctx, posts: list[Post]) -> None:
    """A lightbox gallery: blurred NSFW thumbnails, the full size only in data-full."""
    items = []
    victim_full = ""
    for p in posts:
        full = ctx.file(p, path=f"/uploads/full/{ctx.hexid()}.jpg")
        # pixelated and blurred so far that no hash recognises it (pHash still matched a
        # 24x18 pixelation); such a thumbnail is still the victim's: a case on it is
        # neither a find nor a false case
        blurred = p.image.resize((8, 6)).resize((240, 180), Image.Resampling.NEAREST).filter(
            ImageFilter.GaussianBlur(12))
        thumb = ctx.add(f"/uploads/thumbs/{ctx.hexid()}_blur.jpg",
                        media.encode(blurred, "jpeg", ctx.rng), "image/jpeg",
                        host=ctx.media_host(), media_=True)
        (ctx.site.derived_urls if p.victim else ctx.site.distractor_urls).append(thumb)
        items.append(f'<a class="gallery-item" href="javascript:void(0)" data-fancybox='
                     f'"gallery" data-full="{_src(ctx, full)}" data-caption='
                     f'"{html.escape(p.title)}"><img src="{_src(ctx, thumb)}" width="240" '
                     f'height="180" alt=""></a>')
        if p.victim:
            victim_full = full
    body = ('<div class="gallery">' + "\n".join(items) + '</div><script>document.querySelectorAll'
            '(".gallery-item").forEach(function(a){a.addEventListener("click",function(){'
            'openLightbox(a.dataset.full)})});</script>')
    page = ctx.page("/album/summer", "Album", body)
    ctx.home(posts[:0], lambda p: "", intro='<p><a href="/album/summer">Summer album</a></p>')
    ctx.plant(next(p for p in posts if p.victim), page, victim_full)


PATTERNS: list[tuple[str, Callable[[Ctx, list[Post]], None], list[str]]] = [
    ("hls", p_hls, ["videojs", "hlsjs", "data-config"]),
    ("hls_aes", p_hls_aes, ["hlsjs"]),
    ("dash", p_dash, ["data-attr", "inline-js"]),
    ("og_video", p_og_video, ["meta"]),
    ("video_poster", p_video_poster, ["poster"]),
    ("iframe_embed", p_iframe_embed, ["video-tag", "jwplayer"]),
    ("spa_gallery", p_spa_gallery, ["json-api"]),
    ("next_data", p_next_data, ["next"]),
    ("nuxt", p_nuxt, ["nuxt2"]),
    ("initial_state", p_initial_state, ["redux"]),
    ("jsonld", p_jsonld, ["absolute", "graph"]),
    ("infinite_scroll", p_infinite_scroll, ["cursor"]),
    ("age_gate", p_age_gate, ["form", "link"]),
    ("js_challenge", p_js_challenge, ["cookie-reload"]),
    ("sitemap_only", p_sitemap_only, ["gz-index"]),
    ("webp", p_webp, ["img"]),
    ("webp_animated", p_webp_animated, ["frame3"]),
    ("avif", p_avif, ["img"]),
    ("gif_animated", p_gif_animated, ["frame3"]),
    ("apng", p_apng, ["frame3"]),
    ("data_uri", p_data_uri, ["jpeg-base64"]),
    ("viewer_meta_refresh", p_viewer_meta_refresh, ["meta"]),
    ("viewer_js_location", p_viewer_js_location, ["replace", "href"]),
    ("viewer_cross_host", p_viewer_cross_host, ["text-link"]),
    ("srcset", p_srcset, ["w-descriptors"]),
    ("picture_source", p_picture_source, ["avif-webp"]),
    ("lazy", p_lazy, ["data-src", "data-lazy", "data-original"]),
    ("css_background", p_css_background, ["quot", "single"]),
    ("og_image_only", p_og_image_only, ["paywall"]),
    ("forum_attachment", p_forum_attachment, ["vbulletin"]),
    ("lightbox_data_full", p_lightbox, ["blurred-thumbs"]),
]


