"""Object stores: the local folder (embedded default) and S3 through boto3 against moto's server
mode over HTTP, including a real crawl that stores into the bucket."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines.objects import LocalStore, S3Store, media_key, open_store
from testkit.testweb.model import WebPlan
from testkit.testweb.server import free_port, start_testweb
from tests.test_crawl import register_test_victims, run_haechi

MOTO = str(Path(sys.executable).with_name("moto_server"))


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    process = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    env = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def make_bucket(name: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=name)


def test_local_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "objects"))
    assert isinstance(store, LocalStore)
    key = media_key(hashlib.sha256(b"abc").hexdigest())
    assert store.put(key, b"abc") is True
    assert store.put(key, b"abc") is False  # stored once
    assert store.get(key) == b"abc"
    store.replace(key, b"rotated")  # only re-encryption overwrites a key
    assert store.get(key) == b"rotated"
    assert not list((tmp_path / "objects").rglob(".part-*"))
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside", b"x")


@pytest.mark.parametrize("key", ["../outside", "media/../../outside", "media/ab/../../..",
                                 "/etc/passwd", "media/\0x", "", ".", "media/..", "./"])
def test_local_store_refuses_a_key_that_leaves_or_names_its_folder(tmp_path: Path,
                                                                   key: str) -> None:
    store = LocalStore(tmp_path / "objects")
    for call in (lambda: store.put(key, b"x"), lambda: store.get(key),
                 lambda: store.exists(key), lambda: store.replace(key, b"x"),
                 lambda: store.delete(key)):
        with pytest.raises(ValueError, match=r"escapes|names the store"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects"]


def test_local_store_follows_no_link_out_of_its_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    store = LocalStore(tmp_path / "objects")
    (tmp_path / "objects" / "media").mkdir()
    (tmp_path / "objects" / "media" / "ab").symlink_to(outside)  # a folder link, mid-key
    (tmp_path / "objects" / "file").symlink_to(outside / "secret")  # a file link, last
    (tmp_path / "objects" / "dangling").symlink_to(outside / "missing")
    for key in ("media/ab/secret", "media/ab/new", "file", "dangling"):
        for call, args in ((store.put, (key, b"x")), (store.get, (key,)),
                           (store.exists, (key,)), (store.replace, (key, b"x"))):
            with pytest.raises(ValueError, match="escapes"):
                call(*args)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"


def test_local_store_follows_a_link_inside_its_folder_and_opens_through_a_linked_path(
        tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")  # the store folder named by a link
    store = LocalStore(tmp_path / "linked" / "objects")
    assert store.put("media/aa/one", b"1") is True
    (tmp_path / "real" / "objects" / "media" / "bb").symlink_to(
        tmp_path / "real" / "objects" / "media" / "aa")
    assert store.exists("media/bb/one") and store.get("media/bb/one") == b"1"
    assert store.put("media/bb/one", b"again") is False
    assert store.put("media/bb/two", b"2") is True
    assert (tmp_path / "real" / "objects" / "media" / "aa" / "two").read_bytes() == b"2"
    assert not store.exists("media/cc/none") and not store.exists("media/aa/one/below")
    with pytest.raises(FileNotFoundError):
        store.get("media/cc/none")
    store.delete("media/aa/one")
    assert not store.exists("media/aa/one")


def test_unknown_store_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no store for scheme 'ftp'"):
        open_store("ftp://host/path")


def test_s3_store_round_trip_over_http(s3_env) -> None:
    make_bucket("unit-bucket")
    store = open_store("s3://unit-bucket/some/prefix")
    assert isinstance(store, S3Store)
    key = media_key("ab" * 32)
    assert not store.exists(key)
    assert store.put(key, b"bytes") is True
    assert store.put(key, b"bytes") is False
    assert store.get(key) == b"bytes"
    store.replace(key, b"rotated")
    assert store.get(key) == b"rotated"
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket="unit-bucket")["Contents"]
    assert [o["Key"] for o in listed] == [f"some/prefix/{key}"]


def test_crawl_stores_every_fetched_file_in_s3(s3_env, tmp_path: Path) -> None:
    import boto3

    make_bucket("crawl-bucket")
    plan = WebPlan(sites=4, seed=3, pages=1, images_per_page=2, traps=False, hostile=False)
    env = {**os.environ, **s3_env, "HAECHI_HOME": str(tmp_path / "home"),
           "HAECHI_STORE": "s3://crawl-bucket/media-store"}
    register_test_victims(env, tmp_path / "victims", plan)
    web = start_testweb(plan)
    try:
        summary = json.loads(run_haechi(env, "crawl", "--json",
                                        *[web.web.site_url(i) for i in range(plan.sites)]))
    finally:
        web.stop()
    assert summary["files"] >= plan.sites * plan.images_per_page
    client = boto3.client("s3")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="crawl-bucket")["Contents"]]
    assert len(keys) >= plan.sites * plan.images_per_page
    for key in keys:
        assert key.startswith("media-store/media/")
        body = client.get_object(Bucket="crawl-bucket", Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == key.rsplit("/", 1)[1]
    cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    assert len(cases) == len(web.web.planted())
