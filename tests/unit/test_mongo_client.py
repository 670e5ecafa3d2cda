"""The pymongo client for a real MongoDB (feedapp/infra/mongo.py), built without a server.

No MongoDB server runs here, so these tests check what can be checked honestly: the options a
real pymongo MongoClient ends up with (pymongo builds its client lazily), the DNS lookups a
`mongodb+srv://` URI makes (through a stand-in for the DNS resolver pymongo calls), and which
read preference pymongo's own server selection is asked for by each repository query (from
pymongo's server-selection log, against a replica set that cannot be reached).
"""
import json
import logging
import socket
from types import SimpleNamespace

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pymongo
import pytest
from bson import ObjectId
from pymongo.errors import ServerSelectionTimeoutError
from pymongo.read_preferences import Primary, SecondaryPreferred

from feedapp.config import READ_PREFERENCES, Config, ConfigError
from feedapp.infra import mongo, store
from feedapp.infra.mongo import connect_mongo, explore_read_preference
from feedapp.repository import Repository

REPLICA_SET = "mongodb://db1.internal:27017,db2.internal:27017,db3.internal:27017/feed?replicaSet=rs0"


@pytest.fixture
def opened():
    """opened(config) -> a Database from connect_mongo; its client is closed after the test."""
    clients = []

    def make(config):
        db = connect_mongo(config)
        clients.append(db.client)
        return db

    yield make
    for client in clients:
        client.close()


def config(tmp_path, **env):
    return Config.from_env({"DATA_DIR": str(tmp_path), "JWT_SECRET": "s" * 40, **env})


# --- client options ---------------------------------------------------------------------------

def test_replica_set_client_writes_to_a_majority_retries_and_reads_the_primary(tmp_path, opened):
    db = opened(config(tmp_path, MONGO_URI=REPLICA_SET))
    client = db.client
    assert db.name == "feed"  # the URI's database wins over MONGO_DB
    assert client.write_concern.document == {"w": "majority", "j": True, "wtimeout": 5000}
    assert client.options.retry_writes is True
    assert client.options.retry_reads is True
    assert client.read_preference == Primary()
    assert client.options.replica_set_name == "rs0"
    assert set(client.topology_description.server_descriptions()) == {
        ("db1.internal", 27017), ("db2.internal", 27017), ("db3.internal", 27017)}
    assert client.options.server_selection_timeout == 3.0
    assert client.options.pool_options.connect_timeout == 3.0
    assert client.options.pool_options.socket_timeout == 10.0


def test_settings_override_what_the_uri_says(tmp_path, opened):
    uri = REPLICA_SET + "&w=1&journal=false&retryWrites=false&readPreference=secondary"
    client = opened(config(tmp_path, MONGO_URI=uri)).client
    assert client.write_concern.document == {"w": "majority", "j": True, "wtimeout": 5000}
    assert client.options.retry_writes is True
    assert client.read_preference == Primary()


def test_write_concern_and_timeouts_are_configurable(tmp_path, opened):
    client = opened(config(
        tmp_path, MONGO_URI=REPLICA_SET, MONGO_WRITE_CONCERN="2", MONGO_JOURNAL="0",
        MONGO_WTIMEOUT_MS="1500", MONGO_TIMEOUT_MS="12000", MONGO_SOCKET_TIMEOUT_MS="20000",
    )).client
    assert client.write_concern.document == {"w": 2, "j": False, "wtimeout": 1500}
    assert client.options.server_selection_timeout == 12.0
    assert client.options.pool_options.connect_timeout == 12.0
    assert client.options.pool_options.socket_timeout == 20.0


def test_the_store_connects_to_mongodb_through_connect_mongo(tmp_path):
    db = store.connect(config(tmp_path, MONGO_URI="mongodb://db1.internal:27017/?replicaSet=rs0"))
    try:
        assert isinstance(db, pymongo.database.Database)
        assert db.name == "feedapp"  # no database in the URI: MONGO_DB's default
        assert db.client.write_concern.document["w"] == "majority"
    finally:
        db.client.close()


@pytest.mark.parametrize("env, message", [
    ({"MONGO_WRITE_CONCERN": "0"}, "MONGO_WRITE_CONCERN must be majority or a number of members"),
    ({"MONGO_WRITE_CONCERN": "fast"}, "MONGO_WRITE_CONCERN must be majority"),
    ({"MONGO_EXPLORE_READ_PREFERENCE": "secondaries"}, "MONGO_EXPLORE_READ_PREFERENCE must be one of"),
    ({"MONGO_EXPLORE_READ_PREFERENCE": "secondary", "MONGO_MAX_STALENESS_S": "30"}, "at least 90 seconds"),
    ({"MONGO_MAX_STALENESS_S": "120"}, "only with a read preference other than primary"),
    ({"MONGO_TIMEOUT_MS": "0"}, "MONGO_TIMEOUT_MS must be at least 1"),
])
def test_bad_mongo_settings_fail_at_start_with_a_clear_message(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, MONGO_URI=REPLICA_SET, **env)


def test_every_read_preference_name_the_config_accepts_has_a_class():
    assert set(READ_PREFERENCES) == set(mongo.READ_PREFERENCES)


# --- the explore read preference --------------------------------------------------------------

def test_explore_read_preference_applies_to_mongodb_only(tmp_path):
    env = {"MONGO_EXPLORE_READ_PREFERENCE": "secondaryPreferred", "MONGO_MAX_STALENESS_S": "120"}
    assert explore_read_preference(config(tmp_path, MONGO_URI=REPLICA_SET, **env)) == \
        SecondaryPreferred(max_staleness=120)
    assert explore_read_preference(config(tmp_path, MONGO_URI=REPLICA_SET)) is None  # primary
    assert explore_read_preference(config(tmp_path, **env)) is None  # the embedded store
    assert explore_read_preference(config(tmp_path, MONGO_URI="memory://", **env)) is None


def unreachable_replica_set() -> str:
    with socket.socket() as sock:  # a loopback port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"mongodb://127.0.0.1:{port}/feed?replicaSet=rs0"


def selectors_asked_for(caplog, query) -> set:
    """The read preferences pymongo's server selection was asked for while query() ran."""
    caplog.clear()
    with pytest.raises(ServerSelectionTimeoutError):
        query()
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pymongo.serverSelection"]
    return {entry["selector"] for entry in logged if entry["message"] == "Server selection started"}


def test_only_the_explore_queries_read_where_the_setting_says(tmp_path, opened, caplog):
    cfg = config(tmp_path, MONGO_URI=unreachable_replica_set(), MONGO_TIMEOUT_MS="50",
                 MONGO_EXPLORE_READ_PREFERENCE="secondaryPreferred")
    repo = Repository(opened(cfg), explore_read_preference(cfg))
    caplog.set_level(logging.DEBUG, logger="pymongo.serverSelection")
    secondary, primary = repr(SecondaryPreferred()), repr(Primary())
    user = ObjectId()

    assert selectors_asked_for(caplog, lambda: repo.explore(q="hello")) == {secondary}
    assert selectors_asked_for(caplog, lambda: repo.explore(sort="popular", page=2)) == {secondary}
    assert selectors_asked_for(caplog, lambda: repo.timeline(user, 20)) == {primary}
    assert selectors_asked_for(caplog, lambda: repo.feed(user, 20)) == {primary}
    assert selectors_asked_for(caplog, lambda: repo.get_posts([ObjectId()])) == {primary}
    assert selectors_asked_for(caplog, lambda: repo.get_user(user)) == {primary}
    assert selectors_asked_for(caplog, lambda: repo.counter("explore_generation")) == {primary}


def test_with_the_default_the_explore_queries_read_the_primary(tmp_path, opened, caplog):
    cfg = config(tmp_path, MONGO_URI=unreachable_replica_set(), MONGO_TIMEOUT_MS="50")
    repo = Repository(opened(cfg), explore_read_preference(cfg))
    caplog.set_level(logging.DEBUG, logger="pymongo.serverSelection")
    assert selectors_asked_for(caplog, lambda: repo.explore(q="hello")) == {repr(Primary())}


def test_explore_results_are_unchanged_by_a_read_preference(repo, new_user):
    author = new_user()
    for n in range(3):
        repo.create_post(author["_id"], f"post {n}")
    routed = Repository(repo.db, SecondaryPreferred())
    assert routed._explore_posts().read_preference == SecondaryPreferred()
    assert routed.explore(q="POST") == repo.explore(q="POST")
    assert routed.explore(q="POST")[1] == 3


# --- mongodb+srv ------------------------------------------------------------------------------

class Answer(list):
    """What dns.resolver.resolve returns, as far as pymongo looks: rdata items and a TTL."""
    rrset = SimpleNamespace(ttl=60)


@pytest.fixture
def dns_records(monkeypatch):
    """A stand-in for dns.resolver.resolve (what pymongo calls) serving `records`
    {(name, type): [rdata text]}; `asked` lists the (name, type) lookups made."""
    records, asked = {}, []

    def resolve(name, rdtype, **kwargs):
        asked.append((str(name), rdtype))
        texts = records.get((str(name), rdtype))
        if texts is None:
            raise dns.resolver.NXDOMAIN()
        kind = dns.rdatatype.from_text(rdtype)
        return Answer(dns.rdata.from_text(dns.rdataclass.IN, kind, text) for text in texts)

    monkeypatch.setattr(dns.resolver, "resolve", resolve)
    return SimpleNamespace(records=records, asked=asked)


def test_srv_uri_takes_its_hosts_and_options_from_dns(tmp_path, dns_records):
    dns_records.records[("_mongodb._tcp.cluster0.example.net", "SRV")] = [
        "0 0 27017 shard-00-00.cluster0.example.net.",
        "0 0 27018 shard-00-01.cluster0.example.net.",
    ]
    dns_records.records[("cluster0.example.net", "TXT")] = ['"replicaSet=atlas-rs0&authSource=admin"']
    db = connect_mongo(config(tmp_path, MONGO_URI="mongodb+srv://cluster0.example.net/"))
    try:
        client = db.client
        assert ("_mongodb._tcp.cluster0.example.net", "SRV") in dns_records.asked
        assert ("cluster0.example.net", "TXT") in dns_records.asked
        assert set(client.topology_description.server_descriptions()) == {
            ("shard-00-00.cluster0.example.net", 27017), ("shard-00-01.cluster0.example.net", 27018)}
        assert client.options.replica_set_name == "atlas-rs0"
        assert client.options.pool_options._ssl_context is not None  # +srv turns TLS on
        assert client.write_concern.document == {"w": "majority", "j": True, "wtimeout": 5000}
        assert client.options.retry_writes is True
        assert client.read_preference == Primary()
        assert db.name == "feedapp"
    finally:
        db.client.close()


def test_srv_uri_without_srv_records_fails_at_start(tmp_path, dns_records):
    with pytest.raises(pymongo.errors.ConfigurationError):
        connect_mongo(config(tmp_path, MONGO_URI="mongodb+srv://missing.example.net/"))
    assert ("_mongodb._tcp.missing.example.net", "SRV") in dns_records.asked


# --- a write the replica set could not confirm ------------------------------------------------

def test_a_write_not_confirmed_in_time_is_a_503_not_a_500(client, worker, make_user, monkeypatch):
    user = make_user()

    def unconfirmed(*args, **kwargs):
        raise pymongo.errors.WTimeoutError("waiting for replication timed out", code=64)

    monkeypatch.setattr(worker.repo, "update_profile", unconfirmed)
    response = client.patch("/api/me", json={"bio": "hello"}, headers=user.headers)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "service_unavailable"
    assert "could not confirm the write" in response.get_json()["error"]["message"]
