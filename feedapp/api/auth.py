"""POST /api/auth/register, login, refresh, logout."""
from flask import Blueprint, g, jsonify, request

from ..ratelimit import address_subject
from ..schemas import LoginSchema, RefreshSchema, RegisterSchema
from . import auth_required, json_body, worker

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
register_schema, login_schema, refresh_schema = RegisterSchema(), LoginSchema(), RefreshSchema()


@bp.post("/register")
def register():
    """Rate-limited per client address (see AccountService.register)."""
    data = json_body(register_schema)
    user = worker().accounts.register(data["username"], data["email"], data["password"],
                                         data.get("display_name") or data["username"],
                                         address_subject(request.remote_addr))
    return jsonify({"user": user}), 201


@bp.post("/login")
def login():
    """Brute-force limited per client address and per account (see AccountService.login)."""
    data = json_body(login_schema)
    address = address_subject(request.remote_addr)
    return jsonify(worker().accounts.login(data["username"], data["password"], address))


@bp.post("/refresh")
def refresh():
    data = json_body(refresh_schema)
    return jsonify(worker().tokens.refresh(data["refresh_token"]))


@bp.post("/logout")
@auth_required
def logout():
    worker().tokens.logout(g.claims)
    return jsonify({"message": "Logged out"})
