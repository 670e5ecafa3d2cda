"""Profiles and follows: /api/users/..., /api/me."""
from flask import Blueprint, jsonify

from ..schemas import PageQuerySchema, ProfileUpdateSchema
from . import auth_required, cacheable, cacheable_family, caller_id, json_body, path_id, query_args, worker

bp = Blueprint("users", __name__, url_prefix="/api")
update_schema, page_schema = ProfileUpdateSchema(), PageQuerySchema()


@bp.get("/users/<user_id>")
@cacheable_family("profile")
def get_user(user_id):
    return cacheable(worker().profiles.get(path_id(user_id)))


@bp.get("/users/by-username/<username>")
@cacheable_family("profile")
def get_user_by_username(username):
    return cacheable(worker().profiles.get_by_username(username))


@bp.get("/me")
@auth_required
def get_me():
    return jsonify(worker().profiles.private(caller_id()))


@bp.patch("/me")
@auth_required
def patch_me():
    changes = json_body(update_schema)
    return jsonify(worker().profiles.update(caller_id(), changes))


@bp.post("/users/<user_id>/follow")
@auth_required
def follow(user_id):
    return jsonify(worker().follows.set_following(caller_id(), path_id(user_id), True))


@bp.delete("/users/<user_id>/follow")
@auth_required
def unfollow(user_id):
    return jsonify(worker().follows.set_following(caller_id(), path_id(user_id), False))


@bp.get("/users/<user_id>/following")
def following(user_id):
    return _follow_page(user_id, "following")


@bp.get("/users/<user_id>/followers")
def followers(user_id):
    return _follow_page(user_id, "followers")


def _follow_page(user_id, direction):
    uid = path_id(user_id)
    args = query_args(page_schema)
    return jsonify(worker().follows.page(uid, direction, args["limit"], args.get("before")))
