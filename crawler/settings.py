"""Scrapy settings of Haechi's crawler (the embedded default; cluster mode overrides some).

Tuned for a broad crawl of many small, often hostile sites, after Scrapy's "broad crawls"
advice: many sites in parallel, few requests per site, short timeouts, bounded sizes.
"""

BOT_NAME = "haechi"
SPIDER_MODULES = ["crawler.spiders"]
USER_AGENT = "Mozilla/5.0 (compatible; HaechiBot/0.1; +https://github.com/haechi-ncii)"

# Abusive sites do not invite crawlers in; a robots.txt must not hide a victim's picture.
ROBOTSTXT_OBEY = False
# Cookies on, one jar per site visit (the spider's `cookiejar` meta): an age gate's cookie
# must stick for the rest of the visit, and must reach no other site.
COOKIES_ENABLED = True

# Many sites at once, few requests to each; the site-fair queue hands out requests round-robin
# over sites whose download slots are not full, so one slow site cannot take every slot.
CONCURRENT_REQUESTS = 64
CONCURRENT_REQUESTS_PER_DOMAIN = 4
SCHEDULER_PRIORITY_QUEUE = "crawler.pqueues.SiteFairPriorityQueue"
REACTOR_THREADPOOL_MAXSIZE = 20
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_DELAY = 0

DOWNLOAD_TIMEOUT = 20
DNS_TIMEOUT = 10
# The largest video worth fetching; anything bigger is refused while it streams in. Scrapy
# also applies it to decompressed bodies, which defuses gzip bombs.
DOWNLOAD_MAXSIZE = 200 * 1024 * 1024
DOWNLOAD_WARNSIZE = 64 * 1024 * 1024

RETRY_ENABLED = True
RETRY_TIMES = 2
# A site that stays down is counted in the run's summary, not logged as an error line.
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 30.0
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    # A proxy resolves and connects in our place, to addresses the outbound policy never sees;
    # the crawler reaches sites directly (and the guard refuses a request that names a proxy).
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    # The outbound policy (engines/fetch.py): after every middleware that can change where a
    # request goes, before the downloader's stats, so a refused request is not counted as made.
    "crawler.middlewares.OutboundGuardMiddleware": 800,
}
# The resolver Twisted connects through checks every address it gives out against the same
# policy, so the address connected to is the one checked (no DNS rebinding).
TWISTED_DNS_RESOLVER = "crawler.middlewares.GuardedResolver"
# Public addresses only; tests and the demo allow their own test web's loopback addresses here
# (from the variable of the same name). Production never sets it.
HAECHI_FETCH_ALLOW = ""
# Only the network schemes: a page must not make the crawler read local files, FTP or S3.
# http(s) through scrapy-playwright's handler (crawler/browser.py), which renders only the
# requests that ask for a browser and hands every other one to Scrapy's own.
DOWNLOAD_HANDLERS = {"file": None, "ftp": None, "s3": None,
                     "http": "crawler.browser.BrowserDownloadHandler",
                     "https": "crawler.browser.BrowserDownloadHandler"}

# Browser rendering (crawler/browser.py): `auto` renders a page only when its static HTML
# shows too little and it loads scripts, or when it is a JavaScript challenge; `always` and
# `never` are for a site profile or a whole run.
HAECHI_RENDER = "auto"
# Browser pages open at once on one crawler node (each in a context of its own), the most
# pages of one site rendered per visit, and the time one rendered page may take.
HAECHI_BROWSER_PAGES = 4
HAECHI_RENDER_PAGES = 5
HAECHI_RENDER_SECONDS = 20.0
# The Chromium to run: a path or a command name (Debian's `chromium` when empty).
HAECHI_CHROMIUM = ""
# Site profiles (crawler/profiles.py): a TOML file; empty means sites.toml in the data folder.
HAECHI_SITE_PROFILES = ""
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 1
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 20_000
# The route handler (crawler/browser.py) sets every header itself.
PLAYWRIGHT_PROCESS_REQUEST_HEADERS = None
REDIRECT_MAX_TIMES = 5
DEPTH_LIMIT = 30
# Breadth first: a site's index and first pages before its deep archive.
DEPTH_PRIORITY = 1
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

ITEM_PIPELINES = {"crawler.pipelines.StorePipeline": 300}
# Outputs of one response processed at once. Scrapy starts this many tasks per response; a
# page yields a few requests and one item, a file one item, so 2 is enough, and the default of
# 100 (or 32) cost a tenth of the crawl's time in task creation at 20,000 sites (3,000-site
# run: 120.5 s at 2 against 135.7 s at 32).
CONCURRENT_ITEMS = 2
# Responses waiting in the pipelines (bytes); a small queue keeps fetch-to-case time short.
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 2_000_000
# ... and each weighs at least this much in it (crawler/backpressure.py): a file costs as much
# to hash and match however small it is. Measured on the test web (1,000 sites, 3,024 files of
# 12-13 KB, one run each, 2 cores), floor: crawl seconds, fetched -> matched p50/p99 over every
# file, served -> case p50/p99 over the 20 planted: 1 KB (Scrapy's) 165.0 s, 1.06/3.53 s,
# 3.13/5.44 s; 64 KB 140.4 s, 0.79/2.29, 1.05/3.42; 128 KB 136.0 s, 0.80/2.22, 0.79/3.22;
# 256 KB 129.2 s, 0.74/2.10, 0.84/2.47. Files of 256 KB and more weigh what they did.
SCRAPER_SLOT_MIN_RESPONSE_SIZE = 262_144
# The progress line switches itself on (HAECHI_PROGRESS and a terminal).
EXTENSIONS = {"crawler.backpressure.ResponseFloor": 0, "crawler.progress.ProgressExtension": 900}

TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"
