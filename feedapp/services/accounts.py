"""Accounts: registration under its per-address limit, and logins, a password checked
against the brute-force limits, then a session opened."""
from ..auth import hash_password, verify_password
from ..errors import unauthorized


class AccountService:
    def __init__(self, repo, profiles, tokens, limiter, registration_limiter, password_hash_method):
        self.repo = repo
        self.profiles = profiles
        self.tokens = tokens
        self.limiter = limiter
        self.registration_limiter = registration_limiter
        self.password_hash_method = password_hash_method

    def register(self, username, email, password, display_name, address: str) -> dict:
        """Create a user; its PrivateProfile. 429 when the address has no registrations left
        (each costs a full password hash), 409 when the username or email is taken."""
        self.registration_limiter.take("address", address)
        return self.profiles.register(username, email, hash_password(password, self.password_hash_method),
                                      display_name)

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
