"""Logins: a password checked against the brute-force limits, then a session opened."""
from ..auth import verify_password
from ..errors import unauthorized


class LoginService:
    def __init__(self, repo, limiter, tokens):
        self.repo = repo
        self.limiter = limiter
        self.tokens = tokens

    def login(self, name: str, password: str, address: str) -> dict:
        """The token response of API.md for a username or email and its password; 401 when
        they do not match, 429 when the address, then the account, has no attempts left
        (feedapp.ratelimit: checked before the password, only failures stay counted)."""
        self.limiter.take("address", address)
        user = self.repo.get_user_by_login(name)
        # Unknown names are limited like known accounts, so a 429 tells nothing about existence.
        account = f"user:{user['_id']}" if user else f"name:{name.casefold()}"
        self.limiter.take("account", account)
        if not verify_password(user["password_hash"] if user else None, password):
            raise unauthorized("Invalid username or password")
        self.limiter.succeeded(account, address)
        return self.tokens.login(str(user["_id"]))
