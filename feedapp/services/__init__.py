"""Use cases: repository (the truth) + cache (the get_or_load seam) + invalidation."""
from .follows import FollowService
from .logins import LoginService
from .posts import PostService
from .profiles import ProfileService

__all__ = ["FollowService", "LoginService", "PostService", "ProfileService"]
