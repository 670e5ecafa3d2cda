import json
import logging


def access_lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "feedapp.access"]


def test_one_json_line_per_request_with_route_status_tier_and_id(client, make_user, caplog):
    user = make_user()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="feedapp.access"):
        response = client.get(f"/api/users/{user.id}", headers={"X-Request-ID": "abc-123"})
        client.get("/api/nope")
    first, second = access_lines(caplog)
    assert first["route"] == "/api/users/<user_id>" and first["status"] == 200
    assert first["tier"] == response.headers["X-Cache"] and first["latency_ms"] >= 0
    assert first["request_id"] == "abc-123" == response.headers["X-Request-ID"]
    assert second["status"] == 404 and second["route"] is None


def test_a_hostile_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert len(response.headers["X-Request-ID"]) == 32


def test_log_level_warning_silences_request_lines(client, caplog):
    with caplog.at_level(logging.WARNING, logger="feedapp.access"):
        client.get("/healthz")
    assert access_lines(caplog) == []


def _ids_of_a_worker(index, barrier, results):
    from feedapp.observability.requestlog import new_request_id

    barrier.wait(10)
    results.put((index, [new_request_id() for _ in range(100)]))


def test_request_ids_are_unique_across_forked_workers():
    """Each worker (forked as gunicorn forks them) numbers its requests under its own random
    prefix, so no two requests of a deployment share an id."""
    from feedapp.observability.requestlog import new_request_id
    from tests.unit.forked import run_forked

    before_fork = [new_request_id() for _ in range(100)]
    outcomes, codes = run_forked(_ids_of_a_worker, lambda i: (i,), processes=3)
    assert codes == [0, 0, 0]
    ids = before_fork + [i for worker in outcomes.values() for i in worker]
    assert len(set(ids)) == len(ids) == 400
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len({i[:16] for i in ids}) == 4  # one prefix per process
