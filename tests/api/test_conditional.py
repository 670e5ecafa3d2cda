"""Conditional GETs of cacheable responses (API.md: ETag, If-None-Match -> 304)."""
import pytest


@pytest.fixture
def profile(client, alice):
    response = client.get(f"/api/users/{alice.id}")
    assert response.status_code == 200
    return f"/api/users/{alice.id}", response.headers["ETag"]


@pytest.mark.parametrize("header", [
    "{tag}", "W/{tag}", '"other", {tag}', "*", ' "x" ,W/{tag} ',
])
def test_if_none_match_naming_the_tag_is_304_without_body(client, profile, header):
    url, tag = profile
    response = client.get(url, headers={"If-None-Match": header.format(tag=tag)})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == tag


@pytest.mark.parametrize("header", ['"other"', 'W/"other", "x"', "garbage"])
def test_if_none_match_naming_other_tags_is_200_with_the_body(client, profile, header):
    url, tag = profile
    response = client.get(url, headers={"If-None-Match": header})
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"
    assert response.headers["ETag"] == tag


def test_the_tag_is_the_bodys_sha1_and_changes_with_it(client, profile, alice):
    import hashlib

    url, tag = profile
    assert tag == '"' + hashlib.sha1(client.get(url).data).hexdigest() + '"'
    client.patch("/api/me", json={"display_name": "Alice 2"}, headers=alice.headers)
    assert client.get(url).headers["ETag"] != tag


def test_if_match_naming_another_tag_is_412(client, profile):
    url, _ = profile
    assert client.get(url, headers={"If-Match": '"other"'}).status_code == 412
