"""Who may open the dashboard: sign-in settings read from Streamlit's secrets, and the allow-list check.

Sign-in is Streamlit's own OIDC (``st.login``), configured by an ``[auth]`` table in ``secrets.toml``;
synthscope adds the allow-list, in the same file::

    [synthscope.auth]
    allow = ["alice@example.com", "@example.org"]   # one address, or every address of one domain

Nothing here imports Streamlit: ``synthscope serve`` decides before Streamlit starts, and the dashboard's
gate asks :func:`is_allowed` on every script run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# ``synthscope serve`` sets this when it found sign-in configured: the dashboard then refuses to show
# anything unless sign-in is still configured when a page runs (fail closed, never open).
AUTH_ENV = "SYNTHSCOPE_AUTH"
AUTH_REQUIRED = "required"
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


class AccessError(ValueError):
    """Sign-in is configured, but not so that anyone could sign in safely."""


@dataclass(frozen=True)
class AuthSettings:
    """What the secrets say about sign-in. ``configured`` is False when there is no ``[auth]`` table."""

    configured: bool
    allow: tuple[str, ...] = ()
    redirect_uri: str | None = None


def default_secrets_files(app: Path, cwd: Path | None = None, home: Path | None = None) -> list[Path]:
    """The files Streamlit reads secrets from, in its order (later ones win): global, project, app's folder."""
    cwd = cwd or Path.cwd()
    home = home or Path.home()
    files = [home / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml",
             app.parent / ".streamlit" / "secrets.toml"]
    return list(dict.fromkeys(p.resolve() for p in files))


def read_secrets(files: Iterable[Path]) -> dict[str, Any]:
    """The secrets as Streamlit merges them: each file's top-level tables replace the earlier ones'."""
    merged: dict[str, Any] = {}
    for path in files:
        if path.is_file():
            try:
                merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
            except tomllib.TOMLDecodeError as exc:
                raise AccessError(f"{path}: not valid TOML ({exc})") from exc
    return merged


def auth_settings(secrets: Mapping[str, Any]) -> AuthSettings:
    """Read and check the sign-in settings; raise :class:`AccessError` when they are present but unusable."""
    auth = secrets.get("auth")
    if auth is None:
        return AuthSettings(configured=False)
    if not isinstance(auth, Mapping):
        raise AccessError("[auth] in secrets.toml must be a table")
    missing = [key for key in ("redirect_uri", "cookie_secret") if not auth.get(key)]
    providers = [name for name, value in auth.items() if isinstance(value, Mapping) and name != "client_kwargs"]
    if not providers:
        missing += [key for key in _PROVIDER_KEYS if not auth.get(key)]
    if missing:
        raise AccessError(f"[auth] in secrets.toml lacks {', '.join(missing)}")
    if len(providers) > 1:
        raise AccessError(f"[auth] names several providers ({', '.join(providers)}); synthscope signs in with one")
    redirect_uri = str(auth["redirect_uri"])
    if not redirect_uri.endswith("/oauth2callback"):
        raise AccessError(f"[auth] redirect_uri must end with /oauth2callback, not {redirect_uri!r}")
    if len(str(auth["cookie_secret"])) < 32:
        raise AccessError("[auth] cookie_secret is too short: use 32 or more random characters "
                          "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    allow = _allow_list(secrets)
    if not allow:
        raise AccessError('sign-in is configured but nobody is allowed in: add [synthscope.auth] '
                          'allow = ["you@example.com", "@your-company.com"] to secrets.toml')
    return AuthSettings(configured=True, allow=allow, redirect_uri=redirect_uri)


def _allow_list(secrets: Mapping[str, Any]) -> tuple[str, ...]:
    section = secrets.get("synthscope", {})
    section = section.get("auth", {}) if isinstance(section, Mapping) else {}
    allow = section.get("allow", []) if isinstance(section, Mapping) else []
    if isinstance(allow, str) or not isinstance(allow, Sequence):
        raise AccessError("[synthscope.auth] allow must be a list of addresses and @domains")
    entries = tuple(str(entry).strip().lower() for entry in allow)
    for entry in entries:
        local, at, domain = entry.rpartition("@")
        if not at or not domain or "." not in domain or "@" in local or "*" in entry:
            raise AccessError(f"[synthscope.auth] allow: {entry!r} is neither an address nor an @domain")
    return entries


def signed_in_email(user: Mapping[str, Any]) -> str | None:
    """The user's address when the provider vouches for it: present, and not marked unverified."""
    email = user.get("email")
    if not isinstance(email, str) or user.get("email_verified") is False:
        return None
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return None
    return email


def is_allowed(user: Mapping[str, Any], allow: Sequence[str]) -> bool:
    """Whether a signed-in user (``st.user``'s claims) is on the allow-list.

    An entry ``alice@example.com`` admits that address; ``@example.com`` admits every address at exactly
    that domain (not its subdomains). Users the provider did not give a verified address are refused.
    """
    if user.get("is_logged_in") is not True:
        return False
    email = signed_in_email(user)
    if email is None:
        return False
    domain = "@" + email.rpartition("@")[2]
    return email in allow or domain in allow


def redirect_problem(redirect_uri: str, host: str, port: int) -> str | None:
    """Why the provider's redirect back would not reach this server, or None when it would."""
    parsed = urlparse(redirect_uri.replace("{port}", str(port)))
    if (parsed.port or (443 if parsed.scheme == "https" else 80)) != port:
        return f"[auth] redirect_uri {redirect_uri} does not point at port {port} (fine behind a proxy that does)"
    if host in LOOPBACK_HOSTS and parsed.hostname not in LOOPBACK_HOSTS:
        return f"[auth] redirect_uri {redirect_uri} is not on this machine, but the dashboard binds to {host}"
    return None


def sign_in_required() -> bool:
    """Whether ``synthscope serve`` started the dashboard with sign-in on."""
    return os.environ.get(AUTH_ENV) == AUTH_REQUIRED
