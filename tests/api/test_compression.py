"""Compressed answers (API.md "Compression"): br or gzip from 1 KiB, Vary, ETags across encodings."""
import gzip
import json

import brotli
import pytest
from flask import Response

from feedapp import create_app
from feedapp.http.compression import MIN_SIZE, chosen_coding

from .helpers import create_post

DECODERS = {"br": brotli.decompress, "gzip": gzip.decompress}


@pytest.fixture
def feed_page(client, alice, bob):
    """The path of bob's 100-post home feed page and its plain (uncompressed) answer."""
    client.post(f"/api/users/{alice.id}/follow", headers=bob.headers)
    for n in range(100):
        create_post(client, alice, f"post {n} about caches, feeds and the latency of a busy morning")
    path = f"/api/users/{bob.id}/feed?limit=100"
    plain = client.get(path)
    assert plain.status_code == 200 and len(plain.get_json()["items"]) == 100
    assert "Content-Encoding" not in plain.headers
    return path, plain


def decoded(response) -> bytes:
    return DECODERS[response.headers["Content-Encoding"]](response.data)


@pytest.mark.parametrize("accept, coding", [
    ("gzip, deflate, br", "br"),
    ("br", "br"),
    ("gzip", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("gzip;q=1, br;q=0.5", "gzip"),
    ("*", "br"),
    ("*;q=0.5, br;q=0", "gzip"),
])
def test_a_100_post_feed_page_is_compressed_as_the_client_prefers(client, feed_page, accept, coding):
    path, plain = feed_page
    response = client.get(path, headers={"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == coding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert int(response.headers["Content-Length"]) == len(response.data) < len(plain.data) / 3
    assert json.loads(decoded(response)) == plain.get_json()
    assert response.headers["X-Cache"] and response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("accept", [None, "", "identity", "deflate", "br;q=0, gzip;q=0", "*;q=0"])
def test_no_acceptable_coding_sends_the_plain_body_and_still_says_vary(client, feed_page, accept):
    path, plain = feed_page
    headers = {} if accept is None else {"Accept-Encoding": accept}
    response = client.get(path, headers=headers)
    assert "Content-Encoding" not in response.headers
    assert response.data == plain.data
    assert "Accept-Encoding" in response.headers["Vary"]


def test_the_etag_is_the_plain_bodys_and_earns_a_304_in_every_encoding(client, feed_page):
    path, plain = feed_page
    tag = plain.headers["ETag"]
    compressed = client.get(path, headers={"Accept-Encoding": "br"})
    assert compressed.headers["ETag"] == "W/" + tag  # same content, other bytes
    for sent in (tag, compressed.headers["ETag"]):
        for accept in ("br", "gzip", "identity"):
            response = client.get(path, headers={"If-None-Match": sent, "Accept-Encoding": accept})
            assert response.status_code == 304, (sent, accept)
            assert response.data == b"" and "Content-Encoding" not in response.headers
            assert "Accept-Encoding" in response.headers["Vary"]
            assert response.headers["ETag"] in (tag, "W/" + tag)


def test_head_is_not_compressed(client, feed_page):
    path, plain = feed_page
    response = client.head(path, headers={"Accept-Encoding": "br"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert "Accept-Encoding" in response.headers["Vary"]


def test_answers_under_1_kib_are_sent_as_they_are(client, alice):
    for path in ("/healthz", f"/api/users/{alice.id}"):
        response = client.get(path, headers={"Accept-Encoding": "br, gzip"})
        assert len(response.data) < MIN_SIZE
        assert "Content-Encoding" not in response.headers
        assert "Accept-Encoding" not in response.headers.get("Vary", "")


def test_static_files_are_compressed_too(client):
    plain = client.get("/static/dashboard.js")
    response = client.get("/static/dashboard.js", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert decoded(response) == plain.data and len(plain.data) >= MIN_SIZE
    assert "Accept-Ranges" not in response.headers


def test_an_answer_already_encoded_is_left_alone(config, redis_client):
    app = create_app(config)
    app.extensions["feedapp"].start()
    body = gzip.compress(b"{}" * MIN_SIZE)

    @app.get("/api/test-encoded")
    def encoded():
        return Response(body, mimetype="application/json", headers={"Content-Encoding": "gzip"})

    try:
        response = app.test_client().get("/api/test-encoded", headers={"Accept-Encoding": "br"})
        assert response.headers["Content-Encoding"] == "gzip" and response.data == body
    finally:
        app.extensions["feedapp"].close()


@pytest.mark.parametrize("header, coding", [
    ("gzip, deflate, br", "br"), ("gzip ; q=0.8, br;q=0.8", "br"), ("BR", "br"), ("br;q=0.000", None),
    ("gzip;q=0,*", "br"), ("br;q=abc, gzip;q=0.1", "gzip"), ("x" * 5000, None),
])
def test_chosen_coding_follows_q_values(header, coding):
    assert chosen_coding(header) == coding
