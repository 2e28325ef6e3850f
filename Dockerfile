# The one image of every cluster role (infra/terraform runs it as crawler nodes, matcher
# workers, the takedown consumer, the review app and the metrics task, by command).
FROM python:3.11-slim-bookworm
# Debian's Chromium: crawler nodes render the pages that need a browser (crawler/browser.py).
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ chromium \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY crawler crawler
COPY matcher matcher
COPY takedown takedown
COPY grooming grooming
COPY engines engines
COPY haechi haechi
COPY docs docs
RUN pip install --no-cache-dir . && useradd --uid 1000 --create-home haechi
USER 1000:1000
ENV HAECHI_HOME=/tmp/haechi
CMD ["haechi", "--help"]
