"""What the test web contains: sites, their pages and media, planted pictures, traps.

Everything is a pure function of the `WebPlan` (seed, number of sites, options), so the server
process and the test or benchmark that checks the crawl agree on the content without talking.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from testkit.edits import MILD_EDITS
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb import streams
from testkit.testweb.streams import Packaged

# Each way a gallery can show a picture; site i uses MARKUPS[i % len(MARKUPS)] for its
# planted picture, so a few dozen sites cover every pattern.
MARKUPS = (
    "img", "srcset", "lazy", "picture", "inline-css", "style-block", "og-image",
    "twitter-image", "link", "video-poster", "base-href", "protocol-relative", "redirect",
    "no-extension", "script-json", "data-bg", "cdn", "video",
    # App state that a script turns into markup (crawler/appdata.py): Next.js data with
    # \u002F escapes and a relative path, an assignment holding an extension-less URL, JSON-LD.
    "next-data", "app-state", "json-ld",
)
# How today's sites deliver a picture (issue 14), not in the default cycle: a plan asks for them
# by name (WebPlan.markups), and each has its crawl test (tests/test_modern_web.py), marked as
# an expected failure for as long as the crawler does not handle it.
MODERN_MARKUPS = (
    "hls", "hls-aes", "dash", "sitemap-only", "age-gate", "data-uri",
    # Script-built pages (testkit/testweb/apps.py): a client-rendered gallery fed by a JSON API,
    # an infinite-scroll feed over a cursor-paginated API, a Cloudflare-style JS challenge in
    # front of the whole site, a Nuxt 2 payload whose picture is an argument of its IIFE.
    # A Nuxt 3 page's picture is a bare, extension-less string of its devalue payload.
    "spa-gallery", "infinite-scroll", "js-challenge", "nuxt", "nuxt3",
    # An image host's viewer page on another host (the CDN address) reached through the site's
    # short link: a 200 page with a meta refresh, or with a script setting window.location;
    # or linked straight from a forum post by a text link (phpBB's postlink: the URL as text).
    "viewer-meta-refresh", "viewer-js-location", "viewer-text-link",
    # The full-size picture only in a lightbox's data attribute; only in a <picture>'s AVIF
    # source; in a later frame of an animated WebP, GIF or PNG; as AVIF; as a phone's HEIC.
    "lightbox", "picture-avif", "webp-animated", "gif-animated", "apng", "avif", "heic",
)
# The format of a markup's planted file where it is not JPEG: served at /img/<site>-p.<ext>
# and nowhere as JPEG. (Pillow writes AVIF; pillow-heif HEIC; animations are Pillow's too.)
PLANTED_FORMATS = {"avif": "avif", "picture-avif": "avif", "heic": "heic",
                   "webp-animated": "webp", "gif-animated": "gif", "apng": "png"}
# The markups whose planted picture is on an image host's viewer page.
VIEWER_MARKUPS = frozenset({"viewer-meta-refresh", "viewer-js-location", "viewer-text-link"})
# An animated planted picture: ANIMATION_FRAMES frames FRAME_MILLISECONDS apart, the victim's
# picture only in frame VICTIM_FRAME (0-based: the fourth of six), unrelated pictures around it.
ANIMATION_FRAMES = 6
VICTIM_FRAME = 3
FRAME_MILLISECONDS = 1000
LANGUAGES = (("ko", "euc-kr"), ("en", "utf-8"), ("zh", "gb2312"), ("ja", "shift_jis"),
             ("ru", "windows-1251"), ("vi", "utf-8"), ("es", "iso-8859-1"), ("de", "utf-8"))
TITLES = {"ko": "사진 갤러리", "en": "Photo gallery", "zh": "图片库", "ja": "写真ギャラリー",
          "ru": "Фотогалерея", "vi": "Thư viện ảnh", "es": "Galería de fotos",
          "de": "Fotogalerie"}
TRAPS = ("calendar", "repeating-path", "endless-parameters", "session-ids")
HOSTILE = ("bomb", "truncated", "html-as-image", "slow", "error-500", "reset", "gzip-bomb",
           "huge")
IMAGE_SIZE = (320, 240)
CANVASES = 48


def site_address(index: int) -> str:
    """Site `index`'s own loopback address (127.10.0.1 upwards; never 127.0.0.1)."""
    return f"127.{10 + index // 62500}.{(index // 250) % 250}.{index % 250 + 1}"


def site_index(address: str) -> int | None:
    parts = address.split(".")
    if len(parts) != 4 or parts[0] != "127":
        return None
    a, b, c = int(parts[1]) - 10, int(parts[2]), int(parts[3]) - 1
    if a < 0 or not 0 <= b < 250 or not 0 <= c < 250:
        return None
    return a * 62500 + b * 250 + c


# A CDN host shared by all sites, outside the sites' range.
CDN_ADDRESS = "127.9.9.9"
# The test web's addresses as the outbound policy's HAECHI_FETCH_ALLOW: the CDN, and the block
# every site address falls in (127.10.0.1 to 127.11.249.250, room for 125,000 sites, six times
# the largest benchmark), and nothing else of loopback: 127.0.0.1 stays refused, where tests
# run the internal services a hostile page must not reach.
FETCH_ALLOW = f"{CDN_ADDRESS}/32,127.10.0.0/15"
# The abuse desk that takes reports only through a web form (testkit/testweb/forms.py): inside
# FETCH_ALLOW's site block, but no site's address (a site's third octet is below 250).
FORMS_ADDRESS = "127.11.250.1"


@dataclass(frozen=True)
class WebPlan:
    """The parameters that fix the whole test web."""

    sites: int = 24
    seed: int = 7
    victims: int = 3
    pages: int = 3
    images_per_page: int = 3
    # Every `plant_every`-th site carries one planted picture (1: every site).
    plant_every: int = 1
    traps: bool = True
    hostile: bool = True
    # Every `slow_every`-th site (the last of each group) answers each request `slow_seconds`
    # late.
    slow_every: int = 0
    slow_seconds: float = 1.0
    # The markups the sites cycle through, comma-separated (empty: MARKUPS).
    markups: str = ""

    @property
    def markup_cycle(self) -> tuple[str, ...]:
        return tuple(m for m in self.markups.split(",") if m) or MARKUPS


@dataclass(frozen=True)
class Planted:
    site: int
    victim: str
    edit: str
    markup: str
    path: str


@dataclass
class SiteSpec:
    index: int
    language: str
    charset: str
    markup: str
    planted: Planted | None
    traps: tuple[str, ...] = ()
    hostile: tuple[str, ...] = ()
    security_txt: bool = False
    # Seconds each answer of this site is delayed (0: none).
    slow: float = 0.0


def victim_name(number: int) -> str:
    return f"victim-{number + 1}"


@functools.cache
def victim_original(seed: int, number: int) -> Image.Image:
    """The registered picture of test victim `number` (generated; never served as is)."""
    return synthetic_picture(seed=seed * 1000 + 900 + number, size=(640, 480))


class TestWeb:
    """The content of the test web described by a WebPlan."""

    def __init__(self, plan: WebPlan, port: int) -> None:
        self.plan = plan
        self.port = port

    def site_url(self, index: int) -> str:
        return f"http://{site_address(index)}:{self.port}/"

    def site(self, index: int) -> SiteSpec:
        plan = self.plan
        language, charset = LANGUAGES[index % len(LANGUAGES)]
        markups = plan.markup_cycle
        markup = markups[index % len(markups)]
        planted = None
        if plan.victims and index % plan.plant_every == 0:
            edits = list(MILD_EDITS)
            number = (index // plan.plant_every) % plan.victims
            edit = edits[(index * 7 + plan.seed) % len(edits)]
            path = planted_path(markup, index)
            planted = Planted(index, victim_name(number), edit, markup, path)
        traps = (TRAPS[index % len(TRAPS)],) if plan.traps and index % 3 == 1 else ()
        hostile = ((HOSTILE[(index // 4) % len(HOSTILE)],)
                   if plan.hostile and index % 4 == 2 else ())
        slow = bool(plan.slow_every) and index % plan.slow_every == plan.slow_every - 1
        return SiteSpec(index, language, charset, markup, planted, traps, hostile,
                        security_txt=index % 5 == 0,
                        slow=plan.slow_seconds if slow else 0.0)

    def planted(self) -> list[Planted]:
        return [p for i in range(self.plan.sites) if (p := self.site(i).planted) is not None]

    def image_url(self, site: int, planted: Planted) -> str:
        """The URL a correct crawler records for the planted file (after any redirect)."""
        if planted.markup == "cdn":
            return f"http://{CDN_ADDRESS}:{self.port}/cdn/{site}/{site}-p.jpg"
        if planted.markup == "no-extension":
            return f"http://{site_address(site)}:{self.port}/media?id={site}-p"
        if planted.markup == "base-href":
            return f"http://{site_address(site)}:{self.port}/gallery/img/{site}-p.jpg"
        if planted.markup in VIEWER_MARKUPS:
            return f"http://{CDN_ADDRESS}:{self.port}{planted.path}"
        return f"http://{site_address(site)}:{self.port}{planted.path}"

    # --- media bytes ----------------------------------------------------------------------

    def unrelated_image(self, site: int, number: int) -> bytes:
        return unrelated_image(self.plan.seed, site, number)

    def planted_image(self, planted: Planted) -> bytes:
        return planted_image(self.plan.seed, planted.victim, planted.edit, planted.site)

    def planted_file(self, planted: Planted) -> bytes:
        """The planted picture in its markup's format (PLANTED_FORMATS)."""
        return planted_file(self.plan.seed, planted.victim, planted.edit, planted.site,
                            PLANTED_FORMATS[planted.markup])

    def planted_video(self, planted: Planted) -> bytes:
        return planted_video(self.plan.seed, planted.victim, planted.edit, planted.site)

    def planted_stream(self, planted: Planted, kind: str, variant: str) -> Packaged:
        return planted_stream(self.plan.seed, planted.victim, planted.edit, planted.site, kind,
                              variant)


@functools.cache
def _canvas(seed: int, number: int) -> np.ndarray:
    return np.asarray(synthetic_picture(seed=seed * 1000 + number, size=(960, 720)))


def unrelated_image(seed: int, site: int, number: int) -> bytes:
    """A unique unrelated picture: a seeded window of one of a few large generated canvases.

    Cutting windows is about fifty times cheaper than generating a picture, which lets the
    server of a 20,000-site benchmark keep up; windows far apart share no structure.
    """
    rng = np.random.default_rng((seed, site, number))
    canvas = _canvas(seed, int(rng.integers(CANVASES)))
    width, height = IMAGE_SIZE
    x = int(rng.integers(0, canvas.shape[1] - width))
    y = int(rng.integers(0, canvas.shape[0] - height))
    window = canvas[y:y + height, x:x + width]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    return encode(Image.fromarray(np.ascontiguousarray(window)), quality=85)


def planted_path(markup: str, site: int) -> str:
    """Where site `site` serves its planted file (for a viewer markup: on the image host)."""
    if markup == "video":
        return "/video/clip-0.mp4"
    if markup in VIEWER_MARKUPS:
        return f"/images/{site}/{viewer_file(site, 'p')}"
    return f"/img/{site}-p.{PLANTED_FORMATS.get(markup, 'jpg')}"


def viewer_id(site: int, number: str) -> int:
    """The image host's numeric id of site `site`'s picture `number` ("p": the planted one)."""
    return 100_000_000 + int(hashlib.sha256(f"viewer-{site}-{number}".encode()).hexdigest()[:8],
                             16) % 900_000_000


def viewer_file(site: int, number: str) -> str:
    """The image host's file name of a picture, "<id>_<name>.jpg", as pixhost-style hosts name
    uploads (its viewer page is /show/<site>/<file>, the file /images/<site>/<file>)."""
    return f"{viewer_id(site, number)}_{site}-{number}.jpg"


@functools.cache
def planted_picture(seed: int, victim: str, edit: str, site: int) -> Image.Image:
    """The victim's registered picture with the site's edit applied (what a planted file shows)."""
    number = int(victim.rsplit("-", 1)[1]) - 1
    edited = MILD_EDITS[edit](victim_original(seed, number), np.random.default_rng(site))
    return edited.convert("RGB")


@functools.cache
def planted_image(seed: int, victim: str, edit: str, site: int) -> bytes:
    return encode(planted_picture(seed, victim, edit, site), quality=88)


def animation_frames(seed: int, victim: str, edit: str, site: int) -> list[Image.Image]:
    """The frames of an animated planted picture: the victim's only in VICTIM_FRAME."""
    frames = [Image.open(io.BytesIO(unrelated_image(seed, site, 60 + k))).convert("RGB")
              for k in range(ANIMATION_FRAMES - 1)]
    frames.insert(VICTIM_FRAME, planted_picture(seed, victim, edit, site).resize(IMAGE_SIZE))
    return frames


@functools.cache
def planted_file(seed: int, victim: str, edit: str, site: int, fmt: str) -> bytes:
    """The planted picture as an AVIF, a HEIC, or an animated WebP, GIF or PNG (APNG)."""
    buffer = io.BytesIO()
    if fmt in ("webp", "gif", "png"):
        first, *rest = animation_frames(seed, victim, edit, site)
        options = {"quality": 85} if fmt == "webp" else {}
        first.save(buffer, fmt.upper(), save_all=True, append_images=rest,
                   duration=FRAME_MILLISECONDS, loop=0, **options)
    elif fmt == "avif":
        planted_picture(seed, victim, edit, site).save(buffer, "AVIF", quality=75)
    elif fmt == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
        planted_picture(seed, victim, edit, site).save(buffer, "HEIF", quality=80)
    else:
        raise ValueError(f"no planted file format {fmt!r}")
    return buffer.getvalue()


@functools.cache
def webp_image(seed: int, site: int, number: int) -> bytes:
    """An unrelated picture as WebP (a <picture>'s WebP source)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(unrelated_image(seed, site, number))).save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def _video_pictures(seed: int, victim: str, edit: str, site: int
                    ) -> tuple[Image.Image, list[Image.Image]]:
    """The victim's edited picture and two unrelated scenes, for a planted clip."""
    number = int(victim.rsplit("-", 1)[1]) - 1
    victim_frame = MILD_EDITS[edit](victim_original(seed, number),
                                    np.random.default_rng(site)).convert("RGB")
    scenes = [Image.open(io.BytesIO(unrelated_image(seed, site, 90 + k))) for k in range(2)]
    return victim_frame, scenes


_packaging = threading.Lock()


def planted_stream(seed: int, victim: str, edit: str, site: int, kind: str,
                   variant: str) -> Packaged:
    """The planted clip packaged for streaming: `kind` "hls" or "dash", one variant. Made once
    (seconds of encoding) while the player's concurrent segment requests wait for it, instead
    of each of them encoding it again."""
    with _packaging:
        return _planted_stream(seed, victim, edit, site, kind, variant)


@functools.cache
def _planted_stream(seed: int, victim: str, edit: str, site: int, kind: str,
                    variant: str) -> Packaged:
    victim_frame, scenes = _video_pictures(seed, victim, edit, site)
    package = streams.hls if kind == "hls" else streams.dash
    return package(victim_frame, scenes, streams.VARIANT_SIZES[variant])


@functools.cache
def planted_video(seed: int, victim: str, edit: str, site: int) -> bytes:
    """A 6-second clip: unrelated scenes around three seconds of the victim's edited picture."""
    import av

    victim_frame, scenes = _video_pictures(seed, victim, edit, site)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 320, 240
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "30"}
        for index in range(60):
            second = index / 10
            picture = scenes[0] if second < 2 else victim_frame if second < 5 else scenes[1]
            picture = picture.resize((320, 240))
            frame = av.VideoFrame.from_image(picture)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
