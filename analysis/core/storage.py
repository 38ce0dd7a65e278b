"""A workspace on object storage, read side: ``Workspace.open("s3://...")`` reads what ``synthscope push`` published.

Publishing is :mod:`synthscope.team.push`, a layer above the workspace; this module sits below it.

A workspace is still written locally, where every artefact lands with one
``rename``. :func:`push` publishes it to ``s3://bucket/prefix``: the new files
first, then ``index.json``, the list of every published file, with one PUT.
S3 replaces an object whole, so a reader that starts from the index sees the
workspace as of one complete push; the files of a push still under way (or
interrupted) are not listed yet, and artefacts are never overwritten, so the
files an index lists stay what they were.

A reader gets a :class:`RemotePath` as the workspace root: the few pathlib
operations the read side uses (``/``, ``glob``, ``read_text``, ``is_file``,
``exists``), answered from the index and S3 GETs. Its ``str()`` is an
``s3://`` URL, which the DuckDB views read Parquet and JSON from through the
httpfs extension. Such a workspace is read-only.

Credentials, region and endpoint come from boto3's standard chain
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` for S3-compatible servers, or an AWS profile). DuckDB gets
them as a temporary in-memory secret; nothing is written to disk.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from synthscope.core.base import MARKER, WorkspaceError, sql_str

SCHEME = "s3://"
INDEX = "index.json"


def is_remote(root: str | Path) -> bool:
    return str(root).startswith(SCHEME)


@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix`` split into the bucket and a key prefix ('' or ending in '/')."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        bucket, _, prefix = url.removeprefix(SCHEME).partition("/")
        if not is_remote(url) or not bucket:
            raise WorkspaceError(f"{url!r} is not an object-storage location; write it as s3://bucket/prefix")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def url(self, relative: str = "") -> str:
        return f"{SCHEME}{self.bucket}/{self.key(relative)}".rstrip("/")


def clients() -> tuple[Any, Any]:
    """A boto3 session and its S3 client, configured by the standard AWS_* variables or an AWS profile."""
    return _clients(frozenset((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


@functools.cache
def _clients(config: frozenset[tuple[str, str]]) -> tuple[Any, Any]:
    """One session per configuration: building one takes about 0.4 s, and a dashboard opens the workspace
    on every rerun. (Both are thread-safe; expiring credentials refresh themselves.)"""
    import boto3

    boto = boto3.Session()
    return boto, boto.client("s3")


def read_index(s3: Any, loc: Location) -> dict[str, int] | None:
    """The published files (relative path -> size), or None where nothing was ever pushed."""
    try:
        body = s3.get_object(Bucket=loc.bucket, Key=loc.key(INDEX))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)["files"]


# -- reading ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Snapshot:
    """One published index of a workspace and the client that reads its files."""

    loc: Location
    files: dict[str, int]
    session: Any = field(repr=False)
    s3: Any = field(repr=False)


def open_root(url: str) -> RemotePath:
    """The root of the workspace published at ``url``, as of its latest complete push."""
    from botocore.exceptions import BotoCoreError, ClientError

    loc = Location.parse(url)
    boto, s3 = clients()
    try:
        files = read_index(s3, loc)
    except (BotoCoreError, ClientError) as exc:
        raise WorkspaceError(f"cannot read {loc.url(INDEX)}: {exc}") from exc
    if files is None or MARKER not in files:
        raise WorkspaceError(f"{loc.url()} holds no published workspace (no {INDEX}); "
                             f"publish one with `synthscope push WORKSPACE {loc.url()}`")
    return RemotePath(Snapshot(loc, files, boto, s3), "")


@dataclass(frozen=True)
class RemotePath:
    """A path inside a published workspace: the pathlib subset its readers use, over one index."""

    snapshot: Snapshot
    key: str  # relative to the workspace, '' for its root

    def __truediv__(self, part: str | os.PathLike[str]) -> RemotePath:
        return RemotePath(self.snapshot, posixpath.join(self.key, os.fspath(part)) if self.key else os.fspath(part))

    def __str__(self) -> str:
        return self.snapshot.loc.url(self.key)

    def __lt__(self, other: RemotePath) -> bool:
        return self.key < other.key

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.snapshot, posixpath.dirname(self.key))

    def resolve(self) -> RemotePath:
        return self

    def is_file(self) -> bool:
        return self.key in self.snapshot.files

    def is_dir(self) -> bool:
        prefix = f"{self.key}/" if self.key else ""
        return any(f.startswith(prefix) for f in self.snapshot.files)

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Published files matching ``pattern``; as in pathlib, ``*`` never crosses a '/'."""
        parts = pattern.split("/")
        prefix = f"{self.key}/" if self.key else ""
        for f in self.snapshot.files:
            rest = f.removeprefix(prefix).split("/")
            if f.startswith(prefix) and len(rest) == len(parts) and all(map(fnmatchcase, rest, parts)):
                yield RemotePath(self.snapshot, f)

    def read_bytes(self) -> bytes:
        if not self.is_file():
            raise FileNotFoundError(str(self))
        snap = self.snapshot
        return snap.s3.get_object(Bucket=snap.loc.bucket, Key=snap.loc.key(self.key))["Body"].read()

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let ``con`` read this workspace's ``s3://`` URLs: httpfs plus a temporary secret."""
        load_httpfs(con)
        con.execute(duckdb_secret(self.snapshot.session, self.snapshot.s3))


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs from the duckdb-extension-httpfs package when it matches this DuckDB, else from DuckDB's site.

    The package lets a machine without access to extensions.duckdb.org read
    object storage; it carries one DuckDB version's build, which is why
    pyproject.toml pins duckdb to the same version.
    """
    try:
        import duckdb_extension_httpfs
    except ImportError:
        packaged = None
    else:
        packaged = (Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
                    / "httpfs.duckdb_extension")
    if packaged is not None and packaged.is_file():
        con.execute(f"LOAD {sql_str(str(packaged))}")
    else:
        con.execute("INSTALL httpfs")
        con.execute("LOAD httpfs")


def arrow_filesystem() -> Any:
    """A pyarrow S3 filesystem with the credentials, region and endpoint boto3 resolves (as :func:`duckdb_secret`
    gives DuckDB): how a Ray worker reads a published record file by row group, without a shared disk.

    The credentials are resolved on every call (boto3 refreshes expiring ones, e.g. from STS or an instance
    role), and one filesystem is kept per resolved set: a scan longer than its credentials' lifetime gets a
    filesystem with the new ones instead of failing halfway."""
    return _arrow_filesystem(*_resolved(*clients()))


@functools.lru_cache(maxsize=4)
def _arrow_filesystem(region: str, key: tuple[str, str, str | None] | None, endpoint: Any) -> Any:
    from pyarrow import fs

    options: dict[str, Any] = {"region": region}
    if key is not None:
        options.update(access_key=key[0], secret_key=key[1], session_token=key[2])
    if endpoint is not None:
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
    return fs.S3FileSystem(**options)


def _resolved(boto: Any, s3: Any) -> tuple[str, tuple[str, str, str | None] | None, Any]:
    """What boto3 resolved: the region, the credentials (key id, secret, token) or None, and the endpoint
    (a ``urlsplit``) of an S3-compatible server (MinIO, moto, Ceph...), None for AWS itself."""
    credentials = boto.get_credentials()
    key = None
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        key = (frozen.access_key, frozen.secret_key, frozen.token)
    endpoint = urlsplit(s3.meta.endpoint_url)
    own = not endpoint.hostname or not endpoint.hostname.endswith("amazonaws.com")
    return s3.meta.region_name or "us-east-1", key, endpoint if own else None


def duckdb_secret(boto: Any, s3: Any) -> str:
    """``CREATE SECRET`` giving DuckDB the credentials, region and endpoint boto3 resolved."""
    region, key, endpoint = _resolved(boto, s3)
    options = {"TYPE": "s3", "REGION": region}
    if key is not None:
        options.update(KEY_ID=key[0], SECRET=key[1])
        if key[2]:
            options["SESSION_TOKEN"] = key[2]
    if endpoint is not None:  # an S3-compatible server: path-style URLs on its own host
        options.update(ENDPOINT=endpoint.netloc, URL_STYLE="path", USE_SSL=str(endpoint.scheme == "https").lower())
    body = ", ".join(f"{k} {v if k in ('TYPE', 'USE_SSL') else sql_str(v)}" for k, v in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET synthscope_s3 ({body})"
