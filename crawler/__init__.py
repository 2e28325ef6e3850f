"""The crawler: Scrapy spiders that fetch every image and video of registered sites into storage."""
