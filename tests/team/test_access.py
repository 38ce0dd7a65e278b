"""Who may open a shared dashboard (team.access), and what ``synthscope serve`` does with and without sign-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import synthscope.dashboard
from synthscope import cli
from synthscope.team import access

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c" * 40, "client_id": "id",
        "client_secret": "secret", "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}
ALLOW = ["alice@example.com", "@example.org"]


def user(email: Any, **claims: Any) -> dict[str, Any]:
    return {"is_logged_in": True, "email": email, **claims}


def secrets(allow: Any = ALLOW, **auth: Any) -> dict[str, Any]:
    return {"auth": {**AUTH, **auth}, "synthscope": {"auth": {"allow": allow}}}


@pytest.mark.parametrize(("claims", "allowed"), [
    (user("alice@example.com"), True),
    (user("  Alice@Example.COM "), True),
    (user("bob@example.org", email_verified=True), True),
    (user("bob@example.com"), False),  # alice's domain is not on the list, only alice
    (user("bob@sub.example.org"), False),  # a domain entry is that domain, not its subdomains
    (user("bob@example.org.evil.test"), False),
    (user("alice@example.com@evil.test"), False),
    (user("alice@example.com", email_verified=False), False),  # the provider does not vouch for it
    (user(None), False),
    (user(["alice@example.com"]), False),
    ({"email": "alice@example.com"}, False),  # not signed in
    ({"is_logged_in": "true", "email": "alice@example.com"}, False),
])
def test_is_allowed(claims: dict[str, Any], allowed: bool) -> None:
    assert access.is_allowed(claims, tuple(ALLOW)) is allowed


def test_no_auth_table_means_no_sign_in() -> None:
    assert access.auth_settings({}) == access.AuthSettings(configured=False)
    assert access.auth_settings({"other": {"key": 1}}).configured is False


def test_settings_read_from_secrets() -> None:
    settings = access.auth_settings(secrets(allow=["Alice@Example.com", " @example.org"]))
    assert settings == access.AuthSettings(True, ("alice@example.com", "@example.org"), AUTH["redirect_uri"])
    named = {"auth": {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "c" * 40,
                      "corp": {"client_id": "id", "client_secret": "s", "server_metadata_url": "https://x/y"}},
             "synthscope": {"auth": {"allow": ["@example.org"]}}}
    assert access.auth_settings(named).configured


@pytest.mark.parametrize(("bad", "message"), [
    (secrets(allow=[]), "nobody is allowed"),
    ({"auth": AUTH}, "nobody is allowed"),
    (secrets(allow="alice@example.com"), "must be a list"),
    (secrets(allow=["alice"]), "neither an address nor an @domain"),
    (secrets(allow=["*@example.org"]), "neither an address nor an @domain"),
    (secrets(allow=["@localhost"]), "neither an address nor an @domain"),
    (secrets(cookie_secret="short"), "too short"),
    (secrets(redirect_uri="http://127.0.0.1:8501/"), "must end with /oauth2callback"),
    (secrets(client_id=""), "lacks client_id"),
    ({"auth": "yes"}, "must be a table"),
])
def test_unusable_settings_are_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(access.AccessError, match=message):
        access.auth_settings(bad)


def test_secrets_merge_like_streamlit(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text('[auth]\nclient_id = "old"\n[other]\nx = 1\n')
    second.write_text('[auth]\nclient_id = "new"\n')
    assert access.read_secrets([first, second, tmp_path / "missing.toml"]) == {
        "auth": {"client_id": "new"}, "other": {"x": 1}}
    second.write_text("[auth\n")
    with pytest.raises(access.AccessError, match="not valid TOML"):
        access.read_secrets([second])


def test_default_secrets_files_are_streamlits(tmp_path: Path) -> None:
    app = tmp_path / "dashboard" / "app.py"
    files = access.default_secrets_files(app, cwd=tmp_path / "cwd", home=tmp_path / "home")
    assert files == [tmp_path / "home/.streamlit/secrets.toml", tmp_path / "cwd/.streamlit/secrets.toml",
                     tmp_path / "dashboard/.streamlit/secrets.toml"]


def test_redirect_problem() -> None:
    assert access.redirect_problem("http://127.0.0.1:8501/oauth2callback", "127.0.0.1", 8501) is None
    assert access.redirect_problem("http://localhost:{port}/oauth2callback", "127.0.0.1", 9000) is None
    assert access.redirect_problem("https://dash.example.com/oauth2callback", "0.0.0.0", 443) is None
    assert "port 8502" in str(access.redirect_problem("http://127.0.0.1:8501/oauth2callback", "127.0.0.1", 8502))
    assert "not on this machine" in str(access.redirect_problem("http://dash.example.com:8501/oauth2callback",
                                                                 "127.0.0.1", 8501))


# -- synthscope serve ------------------------------------------------------------------------


@pytest.fixture
def tiny_ws(tmp_path: Path) -> Path:
    assert cli.main(["init", str(tmp_path / "ws")]) == 0
    return tmp_path / "ws"


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[list[str], dict[str, str]]]:
    """What ``serve`` would exec, instead of exec'ing it; run from a folder without secrets."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append((argv, env)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(access.AUTH_ENV, access.AUTH_REQUIRED)  # serve decides, whatever it inherits
    return calls


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == name]


def test_serve_without_sign_in_binds_to_loopback_and_says_so(tiny_ws: Path, execs: list, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", str(tiny_ws)]) == 0
    argv, env = execs[0]
    assert option(argv, "--server.address") == ["127.0.0.1"]
    out = capsys.readouterr().out
    assert "no sign-in configured" in out and "binds to 127.0.0.1 only" in out and "anyone on this machine" in out
    assert access.AUTH_ENV not in env
    dashboard = Path(synthscope.dashboard.__file__).resolve().parent
    assert option(argv, "--secrets.files") == [str(tmp_path / "home/.streamlit/secrets.toml"),
                                               str(tmp_path / ".streamlit/secrets.toml"),
                                               str(dashboard / ".streamlit/secrets.toml")]
    # the routes that would go around the sign-in gate stay off
    assert option(argv, "--server.enableStaticServing") == ["false"]
    assert option(argv, "--server.enableAgentApi") == ["false"]
    assert option(argv, "--server.trustedUserHeaders") == ["{}"]
    assert option(argv, "--server.enableXsrfProtection") == ["true"]


def test_serve_refuses_a_shared_host_without_sign_in(tiny_ws: Path, execs: list,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", str(tiny_ws), "--host", "0.0.0.0"]) == 2
    assert "refusing to serve on 0.0.0.0 without sign-in" in capsys.readouterr().err
    assert execs == []
    assert cli.main(["serve", str(tiny_ws), "--host", "0.0.0.0", "--no-auth"]) == 0
    assert "WITHOUT SIGN-IN" in capsys.readouterr().err
    assert option(execs[0][0], "--server.address") == ["0.0.0.0"]


def test_serve_with_sign_in(tiny_ws: Path, execs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('[auth]\n' + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items())
                            + '[synthscope.auth]\nallow = ["alice@example.com"]\n')
    assert cli.main(["serve", str(tiny_ws), "--host", "0.0.0.0", "--secrets", str(secrets_file)]) == 0
    argv, env = execs[0]
    assert env[access.AUTH_ENV] == access.AUTH_REQUIRED
    assert option(argv, "--secrets.files") == [str(secrets_file)]
    assert "sign-in required" in capsys.readouterr().out
    assert cli.main(["serve", str(tiny_ws), "--secrets", str(secrets_file), "--port", "9000"]) == 0
    assert "does not point at port 9000" in capsys.readouterr().err
    assert cli.main(["serve", str(tiny_ws), "--secrets", str(secrets_file), "--no-auth"]) == 2
    assert "remove one of the two" in capsys.readouterr().err
    # the default place, ./.streamlit/secrets.toml, is read too
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit/secrets.toml").write_text(secrets_file.read_text())
    assert cli.main(["serve", str(tiny_ws), "--host", "0.0.0.0"]) == 0
    assert execs[-1][1][access.AUTH_ENV] == access.AUTH_REQUIRED


def test_serve_refuses_unusable_sign_in(tiny_ws: Path, execs: list, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('[auth]\n' + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items()))
    assert cli.main(["serve", str(tiny_ws), "--secrets", str(secrets_file)]) == 2
    assert "nobody is allowed in" in capsys.readouterr().err
    assert cli.main(["serve", str(tiny_ws), "--secrets", str(tmp_path / "missing.toml")]) == 2
    assert execs == []
