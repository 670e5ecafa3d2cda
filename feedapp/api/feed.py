"""Timelines and home feeds."""
from flask import Blueprint

from ..schemas import PageQuerySchema
from . import auth_required, cacheable, cacheable_family, caller_id, path_id, query_args, worker

bp = Blueprint("feed", __name__, url_prefix="/api")
page_schema = PageQuerySchema()


@bp.get("/users/<user_id>/posts")
@cacheable_family("timeline")
def timeline(user_id):
    uid = path_id(user_id)
    args = query_args(page_schema)
    return cacheable(worker().posts.timeline(uid, args["limit"], args.get("before")))


@bp.get("/users/<user_id>/feed")
@cacheable_family("feed")
def user_feed(user_id):
    uid = path_id(user_id)
    args = query_args(page_schema)
    return cacheable(worker().posts.feed(uid, args["limit"], args.get("before")))


@bp.get("/feed")
@auth_required
@cacheable_family("feed")
def my_feed():
    args = query_args(page_schema)
    response = cacheable(worker().posts.feed(caller_id(), args["limit"], args.get("before")))
    response.vary.add("Authorization")
    return response
