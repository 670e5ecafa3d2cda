"""Use cases: repository (the truth) + cache (the get_or_load seam) + invalidation."""
from .accounts import AccountService
from .follows import FollowService
from .posts import PostService
from .profiles import ProfileService

__all__ = ["AccountService", "FollowService", "PostService", "ProfileService"]
