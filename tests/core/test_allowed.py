"""The confinement check for paths typed in the dashboard, and the redaction of server paths in its messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthscope.core.allowed import HIDDEN, NotAllowed, confine, folders_from_env, redact, to_env


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Path]:
    """An import folder with a file, a symlink leading out of it, and a secret beside it."""
    imports, secret = tmp_path / "imports", tmp_path / ".streamlit" / "secrets.toml"
    (imports / "sub").mkdir(parents=True)
    secret.parent.mkdir()
    secret.write_text('cookie_secret = "s3cr3t"\n')
    (imports / "sub" / "data.csv").write_text("prompt\nhi\n")
    (imports / "leak.csv").symlink_to(secret)
    (imports / "out").symlink_to(secret.parent, target_is_directory=True)
    return {"imports": imports, "secret": secret, "data": imports / "sub" / "data.csv"}


def test_a_file_in_an_import_folder_resolves(machine: dict[str, Path]) -> None:
    folders = [machine["imports"]]
    assert confine(str(machine["data"]), folders) == machine["data"].resolve()
    assert confine("sub/data.csv", folders) == machine["data"].resolve()  # relative: inside an import folder
    assert confine(str(machine["imports"] / "sub" / ".." / "sub" / "data.csv"), folders) == machine["data"]
    assert confine(str(machine["imports"] / "sub"), folders) == machine["data"].parent  # a folder (save_to_disk)


@pytest.mark.parametrize("typed", [
    "{secret}", "{imports}/../.streamlit/secrets.toml", "../.streamlit/secrets.toml", "leak.csv",
    "{imports}/leak.csv", "out/secrets.toml", "/etc/passwd", "{imports}/missing.csv", "missing.csv",
    "/etc/no-such-file", "bad\x00path",
])
def test_paths_outside_the_import_folders_are_refused_alike(machine: dict[str, Path], typed: str) -> None:
    typed = typed.format(**machine)
    with pytest.raises(NotAllowed) as caught:
        confine(typed, [machine["imports"]])
    # one answer for outside and for missing, naming only what was typed
    assert str(caught.value) == f"{typed!r} is not a file or folder in the import folders"


def test_without_import_folders_no_path_is_read(machine: dict[str, Path]) -> None:
    with pytest.raises(NotAllowed, match="--import-dir"):
        confine(str(machine["data"]), [])


def test_folders_travel_in_an_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("TEST_DIRS", to_env([a, b]))
    assert folders_from_env("TEST_DIRS") == [a.resolve(), b.resolve()]
    monkeypatch.delenv("TEST_DIRS")
    assert folders_from_env("TEST_DIRS") == []


def test_redact_hides_server_paths_outside_the_shown_folders(machine: dict[str, Path]) -> None:
    imports = machine["imports"]
    text = (f"{machine['data']}:3: bad; see {machine['secret']} and /usr/lib/python3/x.py, "
            f"'{imports}/leak.csv' ({imports}/sub/../../.streamlit) https://huggingface.co/a/b")
    shown = redact(text, [imports])
    assert shown == (f"{machine['data']}:3: bad; see {HIDDEN} and {HIDDEN}, '{HIDDEN}' ({HIDDEN}) "
                     "https://huggingface.co/a/b")
    assert os.sep == "/"  # the redaction knows POSIX paths, the only ones the server has
