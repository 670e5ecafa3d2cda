"""The collections' indexes, and the orders the listings read in (each one an index's)."""
from pymongo import ASCENDING, DESCENDING, IndexModel

NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
POPULAR_FIRST = [("likes_count", DESCENDING)] + NEWEST_FIRST

INDEXES = {
    "users": [
        IndexModel([("username_lower", ASCENDING)], unique=True, name="username_unique"),
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        IndexModel([("followers_count", DESCENDING)], name="most_followed"),
    ],
    "follows": [
        IndexModel(
            [("follower_id", ASCENDING), ("followee_id", ASCENDING)],
            unique=True,
            name="follow_unique",
        ),
        IndexModel([("follower_id", ASCENDING), ("_id", DESCENDING)], name="following_list"),
        IndexModel([("followee_id", ASCENDING), ("_id", DESCENDING)], name="followers_list"),
    ],
    "posts": [
        IndexModel([("author_id", ASCENDING)] + NEWEST_FIRST, name="timeline"),
        IndexModel(NEWEST_FIRST, name="recent"),
        IndexModel(POPULAR_FIRST, name="popular"),
    ],
    "likes": [
        IndexModel([("user_id", ASCENDING), ("post_id", ASCENDING)], unique=True, name="like_unique"),
        IndexModel([("post_id", ASCENDING)], name="likes_of_post"),
    ],
    # Idempotency keys of POST /api/posts: kept two days (MongoDB expires them then; the
    # embedded store keeps them), API.md promises at least one.
    "idempotency": [IndexModel([("at", ASCENDING)], expireAfterSeconds=2 * 24 * 3600, name="expiry")],
}
