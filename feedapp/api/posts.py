"""Posts, likes and the explore listing: /api/posts..."""
from flask import Blueprint, jsonify

from ..schemas import ExploreQuerySchema, PostCreateSchema
from . import (
    auth_required,
    cacheable,
    cacheable_family,
    caller_id,
    idempotency_key,
    json_body,
    path_id,
    query_args,
    worker,
)

bp = Blueprint("posts", __name__, url_prefix="/api/posts")
create_schema, explore_schema = PostCreateSchema(), ExploreQuerySchema()


@bp.post("")
@auth_required
def create_post():
    data = json_body(create_schema)
    key = idempotency_key()
    return jsonify(worker().posts.create(caller_id(), data["content"], key)), 201


@bp.get("")
@cacheable_family("explore")
def explore():
    return cacheable(worker().posts.explore(query_args(explore_schema)), held=False)


@bp.get("/<post_id>")
@cacheable_family("post")
def get_post(post_id):
    return cacheable(worker().posts.get(path_id(post_id)), held=False)  # composed per request


@bp.delete("/<post_id>")
@auth_required
def delete_post(post_id):
    worker().posts.delete(path_id(post_id), caller_id())
    return "", 204


@bp.post("/<post_id>/like")
@auth_required
def like(post_id):
    return jsonify(worker().posts.set_liked(caller_id(), path_id(post_id), True))


@bp.delete("/<post_id>/like")
@auth_required
def unlike(post_id):
    return jsonify(worker().posts.set_liked(caller_id(), path_id(post_id), False))
