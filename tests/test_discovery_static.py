"""Static media discovery without a browser (issue 14): lightboxes' and any data attribute's
pictures, the one media-extension list, viewer pages on image hosts (redirects and the one
picture), and JSON APIs with their cursors. The markup is written as the libraries and sites
write it (PhotoSwipe, fancybox, lightGallery, WooCommerce, an image host, Next.js, Django REST,
GraphQL, Reddit, WordPress REST), and the lists asserted are exact: what must not be taken is
as much the test as what must."""

from __future__ import annotations

import json

import pytest
from scrapy.http import HtmlResponse, TextResponse

from crawler import appdata, discovery
from crawler.apis import ApiError, api_urls, is_json, read_api, script_endpoints
from crawler.appdata import MEDIA_EXTENSIONS, MEDIA_SUFFIX, app_data
from crawler.discovery import data_attribute_media, page_links
from crawler.viewers import main_picture, redirect_target, script_targets, viewer_links


def page(url: str, body: str, headers: dict[str, str] | None = None) -> HtmlResponse:
    return HtmlResponse(url, body=body.encode(), encoding="utf-8", headers=headers)


# --- lightboxes and data attributes ---------------------------------------------------------

PHOTOSWIPE = """<!doctype html><html><body>
<div class="pswp-gallery pswp-gallery--single-column" id="gallery--getting-started">
  <a href="https://cdn.example.net/photoswipe/photos/1/img-2500.jpg" data-pswp-width="1875"
     data-pswp-height="2500" target="_blank">
    <img src="https://cdn.example.net/photoswipe/photos/1/img-200.jpg" alt="" />
  </a>
  <a href="/photo/2/original" data-pswp-width="1669" data-pswp-height="2500" target="_blank">
    <img src="/photo/2/thumb.jpg" alt="" />
  </a>
  <figure itemprop="associatedMedia" itemscope itemtype="http://schema.org/ImageObject">
    <a href="/photo/3/large" itemprop="contentUrl" data-size="1024x1024">
      <img src="/photo/3/s.jpg" itemprop="thumbnail" alt="Image description" />
    </a>
    <figcaption itemprop="caption description">Image caption</figcaption>
  </figure>
  <div class="slide" data-pswp-src="/photo/4/full" data-pswp-width="1600"
       data-pswp-height="1067"></div>
</div>
<nav><a href="/gallery/page/2" class="next">Next</a><a href="/photo/5">a photo's page</a></nav>
</body></html>"""


def test_photoswipe_full_size_links_are_media_and_not_pages() -> None:
    media, pages = page_links(page("https://gallery.example/g/1", PHOTOSWIPE))
    assert sorted(media) == sorted([
        "https://cdn.example.net/photoswipe/photos/1/img-2500.jpg",
        "https://cdn.example.net/photoswipe/photos/1/img-200.jpg",
        "https://gallery.example/photo/2/original",  # a PhotoSwipe link: the picture
        "https://gallery.example/photo/2/thumb.jpg",
        "https://gallery.example/photo/3/large",  # PhotoSwipe 4's data-size="WxH"
        "https://gallery.example/photo/3/s.jpg",
        "https://gallery.example/photo/4/full",  # only in data-pswp-src
    ])
    assert pages == ["https://gallery.example/gallery/page/2", "https://gallery.example/photo/5"]


FANCYBOX = """<!doctype html><html><body>
<a data-fancybox="gallery" data-src="https://lipsum.example/id/1/1024x768"
   data-caption="Optional caption,&lt;br /&gt;that can contain &lt;em&gt;HTML&lt;/em&gt; markup">
  <img src="https://lipsum.example/id/1/240x160" width="240" height="160" alt="" />
</a>
<a data-fancybox="gallery" href="/uploads/2.jpeg" data-thumb="/uploads/2_t.jpeg">
  <img src="/uploads/2_t.jpeg" /></a>
<a data-fancybox data-type="iframe" data-src="https://maps.example.com/embed?pb=1"
   href="javascript:;">Map</a>
<a data-fancybox data-type="ajax" data-src="/ajax/info.html" href="javascript:;">Info</a>
<a data-fancybox href="https://www.youtube.com/watch?v=_sI_Ps7JSEk">A video</a>
<a data-fancybox data-src="#hidden-content" href="javascript:;">Inline</a>
<div id="hidden-content" style="display:none"><p>Hello</p></div>
</body></html>"""


def test_fancybox_data_src_is_media_unless_it_frames_a_page() -> None:
    media, pages = page_links(page("https://shop.example/item/9", FANCYBOX))
    assert sorted(media) == sorted([
        "https://lipsum.example/id/1/1024x768",  # no extension: named src, shaped WxH
        "https://lipsum.example/id/1/240x160",
        "https://shop.example/uploads/2.jpeg",
        "https://shop.example/uploads/2_t.jpeg",
    ])
    # The iframe, the ajax page, the video site's page and the inline box are no pictures.
    assert pages == ["https://www.youtube.com/watch?v=_sI_Ps7JSEk"]


LIGHTGALLERY = """<!doctype html><html><body><div id="lightgallery">
<a data-lg-size="1600-2400" class="gallery-item" data-src="img/1.jpg"
   data-sub-html="<h4>Photo by - <a href='https://unsplash.com/@tobbes_rd'>Tobias</a></h4>
   <p>Location - <a href='/places/puez'>Puezgruppe</a>, Wolkenstein</p>">
  <img class="img-responsive" src="img/thumb-1.jpg" /></a>
<a href="/view/2/hires" data-lightbox="roadtrip" data-title="My caption">
  <img src="img/thumb-2.jpg"></a>
<a href="/view/3" rel="lightbox[set]"><img src="img/thumb-3.jpg"></a>
<a href="/view/4" class="glightbox"><img src="img/thumb-4.jpg"></a>
</div></body></html>"""


def test_lightgallery_and_lightbox_links_and_captions() -> None:
    media, pages = page_links(page("https://photos.example/album/", LIGHTGALLERY))
    assert sorted(media) == sorted([
        "https://photos.example/album/img/1.jpg",
        "https://photos.example/album/img/thumb-1.jpg",
        "https://photos.example/view/2/hires",
        "https://photos.example/album/img/thumb-2.jpg",
        "https://photos.example/view/3",
        "https://photos.example/album/img/thumb-3.jpg",
        "https://photos.example/view/4",
        "https://photos.example/album/img/thumb-4.jpg",
    ])
    # lightGallery's caption is markup, not the page's: its links are neither.
    assert pages == []


WOOCOMMERCE = """<!doctype html><html><body>
<div class="woocommerce-product-gallery woocommerce-product-gallery--with-images images"
     data-columns="4" style="opacity: 0; transition: opacity .25s ease-in-out;">
<figure class="woocommerce-product-gallery__wrapper">
<div data-thumb="https://shop.example/wp-content/uploads/2024/05/hoodie-100x100.jpg"
     data-thumb-alt=""
     data-thumb-srcset="https://shop.example/wp-content/uploads/2024/05/hoodie-100x100.jpg 100w,
       https://shop.example/wp-content/uploads/2024/05/hoodie-150x150.jpg 150w"
     data-thumb-sizes="(max-width: 100px) 100vw, 100px"
     class="woocommerce-product-gallery__image">
<a href="https://shop.example/wp-content/uploads/2024/05/hoodie.jpg"><img width="600"
   height="600" src="https://shop.example/wp-content/uploads/2024/05/hoodie-600x600.jpg"
   class="wp-post-image" alt="" data-caption=""
   data-src="https://shop.example/wp-content/uploads/2024/05/hoodie.jpg"
   data-large_image="https://shop.example/wp-content/uploads/2024/05/hoodie.jpg"
   data-large_image_width="1200" data-large_image_height="1200" decoding="async"
   srcset="https://shop.example/wp-content/uploads/2024/05/hoodie-600x600.jpg 600w,
     https://shop.example/wp-content/uploads/2024/05/hoodie-300x300.jpg 300w"
   sizes="(max-width: 600px) 100vw, 600px" /></a></div>
<div data-thumb="https://img.shopcdn.example/p/881/thumb"
     class="woocommerce-product-gallery__image">
<a href="https://img.shopcdn.example/p/881/full"><img width="600" height="600"
   src="https://img.shopcdn.example/p/881/600"
   data-large_image="https://img.shopcdn.example/p/881/full"
   data-large_image_width="2000" data-large_image_height="2000" /></a></div>
</figure></div>
<form class="cart" action="https://shop.example/product/hoodie/" method="post"></form>
</body></html>"""


def test_woocommerce_large_image_with_and_without_extension() -> None:
    media, _ = page_links(page("https://shop.example/product/hoodie/", WOOCOMMERCE))
    uploads = "https://shop.example/wp-content/uploads/2024/05/"
    assert sorted(media) == sorted([
        uploads + "hoodie-100x100.jpg", uploads + "hoodie-150x150.jpg", uploads + "hoodie.jpg",
        uploads + "hoodie-600x600.jpg", uploads + "hoodie-300x300.jpg",
        "https://img.shopcdn.example/p/881/thumb", "https://img.shopcdn.example/p/881/full",
        "https://img.shopcdn.example/p/881/600",
    ])


CARDS = """<!doctype html><html><body>
<ul class="grid" data-next-url="/gallery/page/2" data-load-more-url="/gallery/more?after=7"
    data-infinite-scroll='{"path": ".pagination__next", "append": ".post", "history": false}'>
<li class="card" data-href="/post/7" data-id="7" data-ratio="4/3" data-title="A day at the sea"
    data-tags="beach/summer" data-author="kim/lee" data-permalink="https://cards.example/post/7">
  <div class="thumb lazy" data-bg="/t/7.webp"></div>
  <span data-tooltip="Click to view" data-original-title="Day/night"></span>
  <time data-date-format="dd/mm/yyyy" data-mime="image/jpeg">2024-05-01</time>
  <button data-target="#modal-7" data-toggle="modal">Open</button>
  <img data-sizes="auto" data-lazy-type="image/jpeg" src="/t/7s.jpg" alt="">
  <video data-setup='{"sources": [{"src": "/v/7.m3u8"}]}'></video>
</li></ul>
</body></html>"""


def test_page_links_and_text_in_data_attributes_are_never_media() -> None:
    media, pages = page_links(page("https://cards.example/", CARDS))
    assert sorted(media) == ["https://cards.example/t/7.webp", "https://cards.example/t/7s.jpg",
                             "https://cards.example/v/7.m3u8"]
    assert pages == []
    # The endpoints a script would fetch: returned as endpoints, never as media.
    assert api_urls(page("https://cards.example/", CARDS)) == [
        "https://cards.example/gallery/page/2", "https://cards.example/gallery/more?after=7"]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("data-hires", "/photo/9/2x", ["/photo/9/2x"]),
    ("data-zoom", "https://img.example/z/9", ["https://img.example/z/9"]),
    ("data-original-src", "//cdn.example/u/9", ["//cdn.example/u/9"]),
    ("data-foo", "https://cdn.example/_next/image?url=%2Fa.png&w=640",
     ["https://cdn.example/_next/image?url=%2Fa.png&w=640"]),  # a media-serving shape
    ("data-foo", "https://res.cdn.example/demo/image/upload/w_800/sample",
     ["https://res.cdn.example/demo/image/upload/w_800/sample"]),
    ("data-foo", "https://pbs.example/media/AbC?format=jpg&name=large",
     ["https://pbs.example/media/AbC?format=jpg&name=large"]),
    ("data-foo", "https://example.com/x/y/z", []),  # no name, no shape: unknown, not taken
    ("data-url", "/images/page/2", []),  # a listing of pictures is a page
    ("data-href", "/photos/big.jpg", ["/photos/big.jpg"]),  # an extension under any name
    ("data-next-url", "/uploads/2024/", []),  # a link name wants an extension
    ("data-full", "/ajax/photo.html", []),
    ("data-image-ratio", "16/9", []),
    ("data-video-format", "video/mp4", []),
    ("data-profile", "/user/kim", []),
    ("data-src", "{{ photo.url }}", []),
    ("data-bg", "/a-1.jpg 1x, /a-2.jpg 2x", ["/a-1.jpg", "/a-2.jpg"]),
    ("data-src", "data:image/png;base64,iVBORw0KGgo=", ["data:image/png;base64,iVBORw0KGgo="]),
])
def test_one_data_attribute(name: str, value: str, expected: list[str]) -> None:
    assert data_attribute_media(name, value) == expected


def test_a_lazy_iframe_is_a_page_not_media() -> None:
    media, pages = page_links(page("https://tube.example/v/1", """<html><body>
<iframe class="lazyload" data-src="https://tube.example/embed/1" allowfullscreen></iframe>
</body></html>"""))
    assert media == [] and pages == ["https://tube.example/embed/1"]


# --- one list of media extensions ----------------------------------------------------------

def test_one_media_extension_list_for_markup_scripts_and_json() -> None:
    assert discovery.MEDIA_EXTENSIONS is appdata.MEDIA_EXTENSIONS is MEDIA_EXTENSIONS
    for extension in (".avif", ".heic", ".heif", ".apng", ".jxl", ".m3u8", ".mpd", ".ts",
                      ".m4s", ".jpeg", ".webp", ".mp4"):
        assert extension in MEDIA_EXTENSIONS
        assert MEDIA_SUFFIX.search(f"/a/b{extension.upper()}")
    files = [f"/f/x{extension}" for extension in MEDIA_EXTENSIONS]
    body = ("<html><body>" + "".join(f'<a href="{f}">f</a>' for f in files)
            + "<script>var list = [" + ",".join(f"'{f}?v=1'" for f in files) + "];</script>"
            + "</body></html>")
    media, pages = page_links(page("https://s.example/", body))
    expected = [f"https://s.example{f}" for f in files]
    assert media == expected + [u + "?v=1" for u in expected] and pages == []
    walked = app_data([("application/json", json.dumps({"list": files}))])
    assert walked.media == files


# --- viewer pages ---------------------------------------------------------------------------

IMAGE_HOST = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Xy12AbC.jpg - imgbox - fast, simple image host</title>
<meta property="og:image" content="https://thumbs2.imgbox.example/ab/cd/Xy12AbC_t.jpg">
</head><body>
<div id="header"><a href="/"><img src="/images/logo.png" width="180" height="40"
 alt="imgbox"></a></div>
<div class="ad"><img src="https://ads.example/banner.gif" width="728" height="90"></div>
<div class="image-container"><a href="https://images2.imgbox.example/ab/cd/Xy12AbC_o.jpg">
<img id="img" class="image-content" src="https://images2.imgbox.example/ab/cd/Xy12AbC_o.jpg"
     title="Xy12AbC.jpg" alt="Xy12AbC.jpg"></a></div>
<div class="gallery-thumbs">
<a href="/Aa11"><img src="https://thumbs2.imgbox.example/11/22/Aa11_t.jpg" width="150"
 height="150"></a>
<a href="/Bb22"><img src="https://thumbs2.imgbox.example/33/44/Bb22_t.jpg" width="150"
 height="150"></a>
</div></body></html>"""


def test_an_image_hosts_viewer_gives_its_one_picture() -> None:
    response = page("https://imgbox.example/Xy12AbC", IMAGE_HOST)
    media, _ = page_links(response)
    assert main_picture(response, media) == "https://images2.imgbox.example/ab/cd/Xy12AbC_o.jpg"


def test_the_biggest_declared_picture_is_the_main_one() -> None:
    response = page("https://ibb.example/xYz9", """<html><body>
<img src="/logo.svg" width="120" height="30">
<div class="wrap"><img src="https://i.ibb.example/xYz9/beach.jpg" width="1280" height="853"
 srcset="https://i.ibb.example/xYz9/beach-640.jpg 640w,
         https://i.ibb.example/xYz9/beach.jpg 1280w"></div>
<img src="https://i.ibb.example/aa/other_t.jpg" width="160" height="160">
</body></html>""")
    media, _ = page_links(response)
    assert main_picture(response, media) == "https://i.ibb.example/xYz9/beach.jpg"


def test_a_lazy_viewer_gives_its_full_size_form() -> None:
    response = page("https://pix.example/v/9", """<html><body><main>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
     data-zoom="/files/9/abc-full.jpg" data-src="/files/9/abc.jpg"
     srcset="/files/9/abc-800.jpg 800w, /files/9/abc-1600.jpg 1600w"></main></body></html>""")
    media, _ = page_links(response)
    assert main_picture(response, media) == "https://pix.example/files/9/abc-full.jpg"


def test_the_social_card_when_nothing_else_says_and_none_for_a_gallery() -> None:
    carded = page("https://host.example/i/7", """<html><head>
<meta property="og:image" content="https://cdn.host.example/i/7.webp"></head><body>
<img src="https://cdn.host.example/i/7.webp"><img src="/sprite.png"><img src="/ad.png">
</body></html>""")
    assert main_picture(carded, page_links(carded)[0]) == "https://cdn.host.example/i/7.webp"
    gallery = page("https://forum.example/t/5", "<html><body>" + "".join(
        f'<img src="/a/{n}.jpg" width="300" height="300">' for n in range(12)) + "</body></html>")
    assert main_picture(gallery, page_links(gallery)[0]) is None


@pytest.mark.parametrize(("markup", "headers", "expected"), [
    ('<META HTTP-EQUIV="Refresh" CONTENT="0; URL=https://imgbox.example/Xy12">', None,
     "https://imgbox.example/Xy12"),
    ("<meta http-equiv=refresh content=\"2;url='/i/Xy12'\">", None,
     "https://short.example/i/Xy12"),
    ('<meta http-equiv="refresh" content="3, viewer/Xy12">', None,
     "https://short.example/s/viewer/Xy12"),
    ('<meta http-equiv="refresh" content="10; url=/late-but-soon">', None,
     "https://short.example/late-but-soon"),
    ('<meta http-equiv="refresh" content="60; url=/later">', None, None),  # a slow page
    ('<meta http-equiv="refresh" content="0">', None, None),  # a reload
    ('<meta http-equiv="refresh" content="0; url=/s/abc">', None, None),  # itself
    ("", {"Refresh": "0; url=https://cdn.example/f/1.jpg"}, "https://cdn.example/f/1.jpg"),
])
def test_meta_refresh(markup: str, headers: dict[str, str] | None,
                      expected: str | None) -> None:
    response = page("https://short.example/s/abc",
                    f"<html><head>{markup}</head><body></body></html>", headers)
    assert redirect_target(response) == expected


@pytest.mark.parametrize(("script", "expected"), [
    ('window.location.replace("https://i.example/v/abc");', "https://i.example/v/abc"),
    ("location.href='/v/abc'", "https://short.example/v/abc"),
    ('location = "/v/abc";', "https://short.example/v/abc"),
    ("top.location = 'https://i.example/v/abc';", "https://i.example/v/abc"),
    ('document.location.href = "/v/abc";', "https://short.example/v/abc"),
    ("window.location.assign(`/v/abc`);", "https://short.example/v/abc"),
    ("window.onload = function () { location.href = '/v/abc'; };",
     "https://short.example/v/abc"),
    ("var n = 3;\nfunction tick() {\n  if (--n <= 0) { window.location = '/v/abc'; }\n"
     "  else { setTimeout(tick, 1000); }\n}\nsetTimeout(tick, 1000);",
     "https://short.example/v/abc"),  # a countdown: its function is called
    ("setTimeout(() => { location.href = '/v/abc' }, 3000);", "https://short.example/v/abc"),
    # Decided: a location set when the visitor clicks is no redirect of the page (it shows
    # its own content until then), nor one in a function nobody calls or a long timer.
    ("document.getElementById('go').addEventListener('click', function () {\n"
     "  location.href = '/v/abc';\n});", None),
    ("$('.thumb').on('click', function(){ window.location = '/v/abc' });", None),
    ("btn.onclick = () => { location.assign('/v/abc') };", None),
    ("function openViewer() { location.href = '/v/abc'; }", None),
    ("setTimeout(function(){ location.href = '/v/abc'; }, 60000);", None),
    ('location.href = "/v/" + id;', None),  # built at run time
    ('// location.href = "/v/abc";\nvar s = "location.href = \'/v/abc\'";', None),
    ('var location2 = "/v/abc"; item.location = "/v/abc";', None),
    ("if (location.href == '/v/abc') { go(); }", None),
])
def test_script_location(script: str, expected: str | None) -> None:
    response = page("https://short.example/s/abc",
                    f"<html><head><script>{script}</script></head><body></body></html>")
    assert redirect_target(response) == expected


def test_an_onclick_attribute_is_no_redirect_and_scripts_regex_literals_are_skipped() -> None:
    response = page("https://short.example/s/abc", """<html><body>
<button onclick="location.href='/v/abc'">View</button>
<script>if (/["'{]/.test(navigator.userAgent)) { document.location.href = '/v/ua'; }</script>
</body></html>""")
    assert redirect_target(response) == "https://short.example/v/ua"
    assert script_targets("location.href = cond ? '/a' : '/b';") == []


# --- JSON APIs ------------------------------------------------------------------------------

CLIENT_GALLERY = """<!doctype html><html><head>
<link rel="alternate" type="application/json" title="JSON"
      href="https://app.example/wp-json/wp/v2/pages/12">
<link rel="alternate" type="application/rss+xml" href="/feed/">
</head><body>
<div id="app" data-api="/api/gallery?page=1" data-endpoint="https://api.app.example/v2/photos"
     data-feed="/feed.json" data-image-url="/media/7/full" data-thumb-url="/t/1.jpg"
     data-api-key="pk_live_51H8" data-url="javascript:void(0)"></div>
<script>
const root = document.getElementById('app');
fetch("/api/feed?limit=20").then(r => r.json()).then(render);
fetch('/api/like', {method: 'POST', body: JSON.stringify({id: 1})});
axios.get('/api/v2/photos?cursor=' + cursor).then(show);
axios.post('/api/track', {e: 'view'});
$.getJSON("https://cdn.app.example/data/items.json", draw);
$.ajax({url: "/ajax/more", type: "GET", dataType: "json", success: add});
$.ajax({url: "/ajax/vote", type: "POST"});
var x = new XMLHttpRequest(); x.open("GET", "/xhr/list?page=" + n); x.send();
var y = new XMLHttpRequest(); y.open("POST", "/xhr/save");
fetch(`/api/u/${id}/photos`);
fetch(`/api/scroll?after=${after}`);
fetch("ftp://files.app.example/list.json");
</script>
<script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{
"feed":"/_next/data/b1d/gallery.json","tags":"\\/api\\/tags","title":"the api/v2 docs",
"image":"/uploads/a.jpg"}},"page":"/gallery","buildId":"b1d"}</script>
</body></html>"""


def test_api_urls_of_a_client_rendered_gallery() -> None:
    assert api_urls(page("https://app.example/gallery", CLIENT_GALLERY)) == [
        "https://app.example/api/gallery?page=1",
        "https://api.app.example/v2/photos",
        "https://app.example/feed.json",
        "https://app.example/api/feed?limit=20",
        "https://app.example/api/v2/photos?cursor=",  # a run-time cursor: the first page
        "https://cdn.app.example/data/items.json",
        "https://app.example/api/scroll?after=",
        "https://app.example/ajax/more",
        "https://app.example/xhr/list?page=1",
        "https://app.example/wp-json/wp/v2/pages/12",
        "https://app.example/_next/data/b1d/gallery.json",
        "https://app.example/api/tags",
    ]


def test_script_endpoints_skip_writes_and_run_time_paths() -> None:
    assert list(script_endpoints(
        "fetch('/api/a', { headers: {Accept: 'application/json'} });"
        "fetch('/api/b', { method: 'DELETE' }); fetch('/api/c/' + id); fetch(url);"
        "jQuery.get('/api/d?offset=' + off);")) == ["/api/a", "/api/d?offset=0"]


def api(body: object, url: str, **kwargs: object) -> tuple[list[str], list[str], list[str]]:
    found = read_api(json.dumps(body).encode(), url, **kwargs)  # type: ignore[arg-type]
    return found.media, found.pages, found.next


def test_next_js_style_cursor_is_added_to_the_query() -> None:
    media, pages, following = api({"pageProps": {
        "items": [{"id": 21, "src": "\u002Fuploads\u002Fp\u002F21.avif", "href": "/p/21"},
                  {"id": 22, "thumbnailUrl": "media/22/preview", "title": "a day/night"}],
        "nextCursor": "eyJpZCI6MjJ9"}}, "https://app.example/api/feed?limit=20",
        base="https://app.example/gallery/")
    assert media == ["https://app.example/uploads/p/21.avif",
                     "https://app.example/gallery/media/22/preview"]  # relative: to the page
    assert pages == ["https://app.example/p/21"]
    assert following == ["https://app.example/api/feed?limit=20&cursor=eyJpZCI6MjJ9"]


def test_rest_next_url_and_json_api_links() -> None:
    media, pages, following = api({
        "count": 52, "next": "https://api.example.org/photos/?page=3",
        "previous": "https://api.example.org/photos/?page=1",
        "results": [{"id": 1, "image": "https://cdn.example.org/p/1", "url": "/photo/1/",
                     "caption": "Sunset/beach", "author": "kim/lee", "ratio": "4/3"}]},
        "https://api.example.org/photos/?page=2")
    assert media == ["https://cdn.example.org/p/1"]
    assert pages == ["https://api.example.org/photo/1/"]
    assert following == ["https://api.example.org/photos/?page=3"]
    *_, following = api({"data": [], "links": {"self": "/v1/posts?page[number]=1",
                                               "next": "/v1/posts?page[number]=2"}},
                        "https://j.example/v1/posts")
    assert following == ["https://j.example/v1/posts?page[number]=2"]
    *_, following = api({"data": [], "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"},
                                                "next": "https://graph.example/v1/me/photos?after=QVFJ"}},
                        "https://graph.example/v1/me/photos")
    assert following == ["https://graph.example/v1/me/photos?after=QVFJ"]


def test_graphql_end_cursor_replaces_the_after_parameter_while_there_is_more() -> None:
    answer = {"data": {"user": {"media": {
        "page_info": {"has_next_page": True, "end_cursor": "QVFEa2"},
        "edges": [{"node": {"display_url": "https://scontent.example/v/t51/1_n.jpg?stp=dst",
                            "shortcode": "C1x"}}]}}}}
    media, _, following = api(answer, "https://gql.example/graphql?query_hash=9f&after=QVFEa1")
    assert media == ["https://scontent.example/v/t51/1_n.jpg?stp=dst"]
    assert following == ["https://gql.example/graphql?query_hash=9f&after=QVFEa2"]
    answer["data"]["user"]["media"]["page_info"]["has_next_page"] = False
    assert api(answer, "https://gql.example/graphql?query_hash=9f&after=QVFEa1")[2] == []


def test_reddit_style_after() -> None:
    listing = {"kind": "Listing", "data": {"after": "t3_1cx9", "dist": 2, "before": None,
               "children": [{"kind": "t3", "data": {
                   "url": "https://i.redd.example/x1.jpg",
                   "permalink": "/r/pics/comments/1cx8/a_title/",
                   "preview": {"images": [{"source": {
                       "url": "https://preview.redd.example/x1.jpg?width=640&amp;s=ab"}}]}}}]}}
    media, pages, following = api(listing, "https://www.reddit.example/r/pics/new.json?limit=2")
    assert media == ["https://i.redd.example/x1.jpg",
                     "https://preview.redd.example/x1.jpg?width=640&amp;s=ab"]
    assert pages == ["https://www.reddit.example/r/pics/comments/1cx8/a_title/"]
    assert following == ["https://www.reddit.example/r/pics/new.json?limit=2&after=t3_1cx9"]
    listing["data"]["after"] = None
    assert api(listing, "https://www.reddit.example/r/pics/new.json?limit=2")[2] == []


def test_wordpress_rest_pages_count_up_until_the_end() -> None:
    posts = [{"id": 11, "link": "https://blog.example/2024/05/a/", "content": {
        "rendered": "<p><img decoding=\"async\" src=\"https://blog.example/wp-content/uploads/"
                    "2024/05/a.jpg\" class=\"wp-image-12\"></p>\n<p><a href=\"/tag/sea/\">"
                    "sea</a></p>", "protected": False}, "title": {"rendered": "A"}}]
    url = "https://blog.example/wp-json/wp/v2/posts?page=2&per_page=1"
    media, pages, following = api(posts, url)
    assert media == ["https://blog.example/wp-content/uploads/2024/05/a.jpg"]
    assert pages == ["https://blog.example/2024/05/a/", "https://blog.example/tag/sea/"]
    assert following == ["https://blog.example/wp-json/wp/v2/posts?page=3&per_page=1"]
    assert api([], url)[2] == []  # past the end
    link = {b"Link": [b'<https://blog.example/wp-json/wp/v2/posts?page=1&per_page=1>; '
                      b'rel="prev", <https://blog.example/wp-json/wp/v2/posts?page=3&per_page=1>'
                      b'; rel="next"']}
    assert api({"ok": True}, url, headers=link)[2] == [
        "https://blog.example/wp-json/wp/v2/posts?page=3&per_page=1"]


def test_has_more_counts_the_page_up_and_its_absence_does_not() -> None:
    url = "https://tube.example/api/videos?sort=new&page=4"
    assert api({"videos": [], "has_more": True}, url)[2] == [
        "https://tube.example/api/videos?sort=new&page=5"]
    assert api({"videos": [], "hasNextPage": False}, url)[2] == []
    assert api({"videos": []}, url)[2] == []
    assert api({"videos": [], "meta": {"total_pages": 9}}, url)[2] == [
        "https://tube.example/api/videos?sort=new&page=5"]
    assert api({"items": [], "nextCursor": "c2"}, "https://s.example/api/f?page=3")[2] == [
        "https://s.example/api/f?page=c2"]  # a cursor replaces a page parameter


def test_an_infinite_scrolls_html_fragments_are_read() -> None:
    media, pages, following = api({
        "html": "<li class=\"post\"><a href=\"/post/9\"><img src=\"data:image/gif;base64,R0lG\""
                " data-src=\"/t/9.jpg\"></a></li>", "next_url": "/api/scroll?after=9",
        "count": 1}, "https://forum.example/api/scroll?after=8",
        base="https://forum.example/latest")
    assert media == ["data:image/gif;base64,R0lG", "https://forum.example/t/9.jpg"]
    assert pages == ["https://forum.example/post/9"]
    assert following == ["https://forum.example/api/scroll?after=9"]


def test_text_values_are_not_urls() -> None:
    media, pages, following = api({"title": "a day at the sea", "image": "sunset",
                                   "author": "kim/lee", "ratio": "4/3", "next": None,
                                   "tags": ["beach", "summer"], "mime": "image/jpeg"},
                                  "https://s.example/api/x")
    assert media == [] and pages == [] and following == []


def test_unreadable_answers_raise_a_clear_error() -> None:
    with pytest.raises(ApiError, match="over the"):
        read_api(b"[" + b"1," * (4 << 20) + b"1]", "https://s.example/api")
    with pytest.raises(ApiError, match="not JSON"):
        read_api(b"<!doctype html><html></html>", "https://s.example/api")
    with pytest.raises(ApiError, match="not an object or an array"):
        read_api(b'"just a string"', "https://s.example/api")
    with pytest.raises(ApiError, match="too deep"):
        read_api(b"[" * 200_000 + b"]" * 200_000, "https://s.example/api")
    # JSONP and anti-XSSI prefixes are undone.
    assert read_api(b'cb({"next": "/api/p?page=2"});', "https://s.example/api/p?page=1"
                    ).next == ["https://s.example/api/p?page=2"]
    assert read_api(b")]}'\n{\"image\": \"/i/1.jpg\"}", "https://s.example/api").media == [
        "https://s.example/i/1.jpg"]


@pytest.mark.parametrize(("content_type", "body", "expected"), [
    ("application/json; charset=utf-8", b'{"a": 1}', True),
    ("application/vnd.api+json", b'{"data": []}', True),
    ("text/html; charset=UTF-8", b'\xef\xbb\xbf  \n[{"id": 1}]', True),  # a mislabelled API
    ("application/json", b"<!DOCTYPE html><title>Log in</title>", False),  # a login wall
    ("text/html", b"<html><body>hi</body></html>", False),
    ("application/json", b")]}'\n[]", True),
    ("application/json", b"", False),
    ("image/jpeg", b"\xff\xd8\xff\xe0", False),
    ("application/javascript", b'jsonp_cb({"items": []});', True),
    ("application/javascript", b'define(["jquery"], function ($) { return 1; });', False),
])
def test_is_json(content_type: str, body: bytes, expected: bool) -> None:
    response = TextResponse("https://s.example/api", body=body,
                            headers={"Content-Type": content_type})
    assert is_json(response) is expected


def test_viewer_links_are_the_off_site_links_that_lead_to_a_picture() -> None:
    response = page("https://forum.example/t/123", """
      <div class="post">
        <a href="https://imgbox.com/Ab12Cd"><img src="https://thumbs2.imgbox.com/ab/12/x_t.png"></a>
        <a href="https://ibb.co/xyz" title="Full size">link</a>
        <a href="http://10.0.0.9/show/77/1234_pic.jpg" class="postlink">http://10.0.0.9/show/77/1234_pic.jpg</a>
        <a href="https://cdn.example/i/qq9">원본 보기</a>
        <a href="https://twitter.com/share?u=x">Share</a>
        <a href="https://friends.example/">Our friends</a>
        <a href="https://ads.example/click?id=3">Buy now</a>
        <a href="/t/124">next thread</a>
        <a href="https://forum.example/u/5"><img src="/avatar.png"></a>
      </div>""")
    assert viewer_links(response) == [
        "https://imgbox.com/Ab12Cd", "https://ibb.co/xyz",
        "http://10.0.0.9/show/77/1234_pic.jpg", "https://cdn.example/i/qq9"]
