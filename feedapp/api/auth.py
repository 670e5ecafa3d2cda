"""POST /api/auth/register, login, refresh, logout."""
from flask import Blueprint, g, jsonify

from ..auth import hash_password, verify_password
from ..errors import unauthorized
from ..schemas import LoginSchema, RefreshSchema, RegisterSchema
from . import auth_required, json_body, resources

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
register_schema, login_schema, refresh_schema = RegisterSchema(), LoginSchema(), RefreshSchema()


@bp.post("/register")
def register():
    data = json_body(register_schema)
    user = resources().profiles.register(
        data["username"],
        data["email"],
        hash_password(data["password"], resources().config.password_hash_method),
        data.get("display_name") or data["username"],
    )
    return jsonify({"user": user}), 201


@bp.post("/login")
def login():
    data = json_body(login_schema)
    user = resources().repo.get_user_by_login(data["username"])
    if not verify_password(user["password_hash"] if user else None, data["password"]):
        raise unauthorized("Invalid username or password")
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
