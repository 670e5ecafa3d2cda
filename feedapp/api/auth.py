"""POST /api/auth/register, login, refresh, logout."""
from flask import Blueprint, g, jsonify, request

from ..auth import hash_password
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
    """Brute-force limited per client address and per account (see LoginService)."""
    data = json_body(login_schema)
    address = address_subject(request.remote_addr)
    return jsonify(resources().logins.login(data["username"], data["password"], address))


@bp.post("/refresh")
def refresh():
    data = json_body(refresh_schema)
    return jsonify(resources().tokens.refresh(data["refresh_token"]))


@bp.post("/logout")
@auth_required
def logout():
    resources().tokens.logout(g.claims)
    return jsonify({"message": "Logged out"})
