"""POST /api/auth/register, login, refresh, logout."""
from flask import Blueprint, g, jsonify, request

from ..auth import hash_password, verify_password
from ..errors import unauthorized
from ..ratelimit import address_subject
from ..schemas import LoginSchema, RefreshSchema, RegisterSchema
from . import auth_required, json_body, resources

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
register_schema, login_schema, refresh_schema = RegisterSchema(), LoginSchema(), RefreshSchema()


@bp.post("/register")
def register():
    """Rate-limited per client address (feedapp.ratelimit): each one costs a full password hash."""
    data = json_body(register_schema)
    resources().registration_limiter.take("address", address_subject(request.remote_addr))
    user = resources().profiles.register(
        data["username"],
        data["email"],
        hash_password(data["password"], resources().config.password_hash_method),
        data.get("display_name") or data["username"],
    )
    return jsonify({"user": user}), 201


@bp.post("/login")
def login():
    """Brute-force limited (feedapp.ratelimit): the address, then the account, must have
    attempts left before the password is checked; only failures stay counted."""
    data = json_body(login_schema)
    limiter = resources().login_limiter
    address = address_subject(request.remote_addr)
    limiter.take("address", address)
    user = resources().repo.get_user_by_login(data["username"])
    # Unknown names are limited like known accounts, so a 429 tells nothing about existence.
    account = f"user:{user['_id']}" if user else f"name:{data['username'].casefold()}"
    limiter.take("account", account)
    if not verify_password(user["password_hash"] if user else None, data["password"]):
        raise unauthorized("Invalid username or password")
    limiter.succeeded(account, address)
    return jsonify(resources().tokens.login(str(user["_id"])))


@bp.post("/refresh")
def refresh():
    data = json_body(refresh_schema)
    return jsonify(resources().tokens.refresh(data["refresh_token"]))


@bp.post("/logout")
@auth_required
def logout():
    resources().tokens.logout(g.claims)
    return jsonify({"message": "Logged out"})
