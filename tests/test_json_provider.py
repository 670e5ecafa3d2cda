"""feedapp's JSON responses (orjson) say what Flask's own provider says."""
import json
from datetime import datetime, timezone

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from feedapp.http.json_provider import ORJSONProvider

SAMPLES = [
    {"items": [{"id": "a1", "author": {"username": "ünï", "display_name": None}, "likes_count": 3}],
     "next_cursor": None},
    {"error": {"code": "validation_error", "fields": {"content": ["too long"]}}},
    [1, 2.5, True, "\u2028 line separator", {"nested": []}],
    {"when": datetime(2026, 11, 23, 10, 15, 30, 123000), "aware": datetime(2026, 11, 23, tzinfo=timezone.utc)},
]


def _apps():
    ours, flask_own = Flask("ours"), Flask("flask_own")
    ours.json = ORJSONProvider(ours)
    flask_own.json = DefaultJSONProvider(flask_own)
    return ours, flask_own


def test_bodies_decode_to_what_flasks_provider_sends():
    ours, flask_own = _apps()
    for sample in SAMPLES:
        with ours.app_context():
            mine = ours.json.response(sample)
        with flask_own.app_context():
            theirs = flask_own.json.response(sample)
        assert json.loads(mine.data) == json.loads(theirs.data), sample
        assert mine.mimetype == theirs.mimetype == "application/json"
        assert mine.data.endswith(b"\n")


def test_a_lone_surrogate_falls_back_to_flasks_encoder_instead_of_failing():
    ours, _ = _apps()
    with ours.app_context():
        response = ours.json.response({"echo": "bad \ud800 input"})
    assert response.status_code == 200
    assert json.loads(response.data) == {"echo": "bad \ud800 input"}
