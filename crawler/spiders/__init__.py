"""Haechi's spiders (Scrapy's SPIDER_MODULES)."""
