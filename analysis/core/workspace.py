"""The workspace: a folder of Parquet artefacts and a DuckDB catalog of views over them.

Layout::

    synthscope.toml                    marks the folder as a workspace; settings
    catalog.duckdb                     the views below, for any DuckDB client (rebuilt after each write)
    catalog.root                       the folder catalog.duckdb was built for (a copied workspace rebuilds it)
    datasets/<name>/<version>/         records.parquet, manifest.json, errors.jsonl
    scans/<scan_id>/                   verdicts.parquet, evidence.parquet, manifest.json
    jobs/<job_id>/                     job.json, status.json, log.txt
    runs/<run_id>/                     manifest.json: a trained model and what it was trained on
    evals/<eval_id>/                   samples.parquet, manifest.json, errors.jsonl: one run x one lm-eval task
    lmeval/<output_id>/                lm-eval's own output folder of an `eval run` (results_*.json, samples_*.jsonl)
    indexes/                           reusable derived data (signatures, embeddings, FAISS, judge cache)
    tmp/                               staging area; never read by a view

Every artefact is staged under ``tmp/`` and moved into place with one
``rename``, so a reader sees it whole or not at all and a crashed writer leaves
nothing behind but a staging folder. Nothing is edited in place. A staging
folder or temporary file names the machine and process that made it
(:func:`owned_name`), so what a killed process left is removed when the
workspace opens (``tmp/``) or a job starts and by ``synthscope gc`` (everywhere),
and what a running process is writing never is (:func:`collect_garbage`). Readers never
open ``catalog.duckdb`` for writing: :meth:`Workspace.connect` builds the same
views in an in-memory DuckDB each time, so a dashboard reading and a job
writing never contend for a DuckDB lock.

A workspace published to object storage (``synthscope push``, see
:mod:`synthscope.core.storage`) opens read-only from its ``s3://`` URL: its root is then
a :class:`synthscope.core.storage.RemotePath` rather than a :class:`~pathlib.Path`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from synthscope.core import schemas, storage
from synthscope.core.base import MARKER, WorkspaceError, sql_str

if TYPE_CHECKING:
    import pandas as pd

    from synthscope.core.storage import RemotePath

CATALOG_ROOT = "catalog.root"
KINDS = ("benchmark", "synthetic", "reference", "source")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# The folders whose children are artefacts named by an id, and what the id is called in messages.
AREAS = {"jobs": "job id", "scans": "scan id", "runs": "run id", "evals": "eval id", "reports": "report id",
         "membership": "score id", "lmeval": "lm-eval output id", "calibrations": "calibration id",
         "generations": "generation run id"}

DEFAULT_CONFIG = """\
# synthscope workspace settings. Command-line flags override these.

[contamination]
# Cheapest first; add "judged" to have a local instruct model look at undecided items.
stages = ["exact", "near_duplicate", "semantic"]

[contamination.ngram]
ns = [13, 8]          # word n-gram sizes; a field uses the largest n that fits it
clean_below = 0.20    # coverage below this: clean (Llama 2 buckets)
dirty_from = 0.80     # coverage from this: dirty; between: partial
top_k = 5             # evidence rows kept per benchmark item
# Stop-grams (frequent n-grams are not evidence); a share of 0 turns that source off:
# stop_item_share = 0.02    # an n-gram in this share of the benchmark's items (stop_item_min = 3 at least)
# stop_record_share = 0.005 # matched by this share of the records not copying its item (stop_record_min = 20)

# Thresholds of the later stages default to values calibrated on known positives and
# negatives; `synthscope calibrate` measures them on your data and prints what to set here.
[contamination.near_duplicate]
# flag_at = 0.5       # exact Jaccard of word 5-gram shingles
# stop_item_share = 0.02  # a shingle in this share of the benchmark's items is its format; 0: off

[contamination.semantic]
# model = "all-MiniLM-L6-v2"
# flag_at = 0.67      # window cosine

[contamination.judge]
# model = "SmolLM2-135M-Instruct"
# confirm_at = 0.5    # P(same problem)
"""


def is_name(value: object) -> bool:
    """Whether ``value`` is safe as one component of a workspace path: no separator, no ``..``, no newline."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def check_name(value: str, what: str) -> str:
    """``value`` when it can name a folder or file of the workspace (a dataset name, version or any id).

    Every name or id that becomes part of a path passes through here, so none can
    climb out of the workspace (``..``, ``/``, an absolute path) or make an odd
    folder (a trailing newline, a leading dot or dash).
    """
    if not is_name(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise WorkspaceError(f"invalid {what} {shown}: use at most 100 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
    return value


# -- temporary files and who owns them --------------------------------------------------------

_MACHINE = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNER = re.compile(r"~([0-9a-f]{8})-([0-9]+)-[0-9a-f]{12}~")
# A leftover whose owner cannot be checked (made on another machine, or by a synthscope that did not name
# owners) is removed once nothing in it has changed for this long.
STALE_SECONDS = 7 * 24 * 3600


def owned_name(prefix: str = "") -> str:
    """A unique name for a temporary file or folder that says who made it: ``<prefix>~<machine>-<pid>-<random>~``."""
    return f"{prefix}~{_MACHINE}-{os.getpid()}-{uuid.uuid4().hex[:12]}~"


def temp_path(path: Path) -> Path:
    """A hidden sibling of ``path`` to write before renaming it into place (it names its owner)."""
    return path.with_name(f".{path.name}{owned_name()}.tmp")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (a zombie, exited but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_parquet(path: Path, table: pa.Table) -> None:
    """Write a Parquet file that readers see whole or not at all."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class DatasetRef:
    """``name`` or ``name@version``; a missing version means the newest."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        name, _, version = text.partition("@")
        return cls(name, version or None)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


class Workspace:
    """A folder of datasets, scans, evals and scorecards, queried through DuckDB views (see the module docstring).

    ``Workspace.init(path)`` makes one, ``Workspace.open(path_or_s3_url)`` opens one,
    ``ws.query(sql)`` runs SQL over its views (``latest_verdicts``, ``records``, ...).
    """

    def __init__(self, root: Path | RemotePath) -> None:
        # A RemotePath answers the reading half of Path's methods, so readers need not tell the two apart.
        self.root: Path | RemotePath = root.resolve()
        self._remote_database: duckdb.DuckDBPyConnection | None = None  # see connect()

    @property
    def read_only(self) -> bool:
        """True for a workspace opened from object storage: it changes only by a new push."""
        return not isinstance(self.root, Path)

    def check_writable(self) -> None:
        if self.read_only:
            raise WorkspaceError(f"{self.root} is a read-only workspace on object storage: do this in the local "
                                 f"workspace it was pushed from, then `synthscope push` it again")

    # -- creation -----------------------------------------------------------------------
    @classmethod
    def init(cls, root: str | Path) -> Workspace:
        """Create a workspace (or leave an existing one as it is)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} exists and is not a folder")
        root.mkdir(parents=True, exist_ok=True)
        if not (root / MARKER).exists():
            if any(root.iterdir()):
                raise WorkspaceError(
                    f"{root} is a non-empty folder that is not a synthscope workspace; "
                    "choose an empty or new folder"
                )
            atomic_write_text(root / MARKER, DEFAULT_CONFIG)
        ws = cls(root)
        for sub in ("datasets", "scans", "jobs", "indexes", "tmp"):
            (ws.root / sub).mkdir(exist_ok=True)
        ws.refresh_catalog()
        return ws

    @classmethod
    def open(cls, root: str | Path, tidy: bool = True) -> Workspace:
        """The workspace at a local folder, or (read-only) the one last pushed to an ``s3://`` URL.

        ``tidy``: first remove what ended processes left in ``tmp/``, and rebuild the catalog of a copied folder.
        """

        if storage.is_remote(root):
            return cls(storage.open_root(str(root)))
        root = Path(root)
        if not (root / MARKER).is_file():
            raise WorkspaceError(
                f"{root} is not a synthscope workspace (no {MARKER}); create one with `synthscope init {root}`"
            )
        ws = cls(root)
        if tidy:
            ws._tidy()
        return ws

    def _tidy(self) -> None:
        """Cheap upkeep on opening: remove ``tmp/`` leftovers of ended processes, and rebuild a catalog that was
        built for another folder (this one is a copy). Skipped where the folder cannot be written."""
        try:
            collect_garbage(self, everywhere=False)
            if self._catalog_root() != str(self.root):
                self.refresh_catalog()
        except PermissionError:
            pass
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise

    # -- settings -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        try:
            return tomllib.loads((self.root / MARKER).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{self.root / MARKER}: {exc}") from exc

    # -- paths --------------------------------------------------------------------------
    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def scans_dir(self) -> Path:
        return self.root / "scans"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def indexes_dir(self) -> Path:
        return self.root / "indexes"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def evals_dir(self) -> Path:
        return self.root / "evals"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def membership_dir(self) -> Path:
        return self.root / "membership"

    @property
    def lmeval_dir(self) -> Path:
        return self.root / "lmeval"

    def dataset_dir(self, ref: DatasetRef) -> Path:
        if ref.version is None:
            ref = self.resolve(ref)
        return self._inside(self.datasets_dir / check_name(ref.name, "dataset name")
                            / check_name(str(ref.version), "version"))

    def artefact_dir(self, area: str, artefact_id: str) -> Path:
        """``<area>/<artefact_id>/`` (e.g. ``jobs/<job_id>``), refusing an id that is not a plain name."""
        return self._inside(self.root / area / check_name(artefact_id, AREAS[area]))

    def _inside(self, path: Path) -> Path:
        """``path``, after checking that it stays under the workspace root once ``..`` are resolved."""
        if isinstance(path, Path) and not Path(os.path.normpath(path)).is_relative_to(self.root):
            raise WorkspaceError(f"{path} is outside the workspace {self.root}")
        return path

    def records_path(self, ref: DatasetRef) -> Path:
        return self.dataset_dir(ref) / "records.parquet"

    # -- writing ------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """Sortable by creation time (to the millisecond), unique across processes."""
        now = datetime.now(UTC)
        return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}-" + uuid.uuid4().hex[:4]

    @contextmanager
    def staged(self, final: Path) -> Iterator[Path]:
        """A fresh folder to write an artefact into; moved to ``final`` only on success."""
        self.check_writable()
        self._inside(final)
        if final.exists():
            raise WorkspaceError(f"{final.relative_to(self.root)} already exists; artefacts are never overwritten")
        tmp = self.root / "tmp" / owned_name("stage")
        tmp.mkdir(parents=True)
        try:
            yield tmp
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError as exc:
                raise WorkspaceError(
                    f"could not move the new artefact into {final.relative_to(self.root)}: {exc}"
                ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.refresh_catalog()

    # -- datasets -----------------------------------------------------------------------
    def manifests(self) -> list[dict[str, Any]]:
        """Every dataset version's manifest, oldest first."""
        out = []
        for path in sorted(self.datasets_dir.glob("*/*/manifest.json")):
            out.append(json.loads(path.read_text(encoding="utf-8")))
        return sorted(out, key=lambda m: (m["created_at"], m["name"], m["version"]))

    def versions(self, name: str) -> list[str]:
        return [m["version"] for m in self.manifests() if m["name"] == name]

    def resolve(self, ref: DatasetRef) -> DatasetRef:
        """Fill in the newest version and check the dataset exists."""
        versions = self.versions(ref.name)
        if not versions:
            known = sorted({m["name"] for m in self.manifests()})
            raise WorkspaceError(
                f"no dataset named {ref.name!r} in {self.root}"
                + (f"; datasets: {', '.join(known)}" if known else "; import one with `synthscope ingest`")
            )
        if ref.version is None:
            return DatasetRef(ref.name, versions[-1])
        if ref.version not in versions:
            raise WorkspaceError(
                f"dataset {ref.name!r} has no version {ref.version!r}; versions: {', '.join(versions)}")
        return ref

    def manifest(self, ref: DatasetRef) -> dict[str, Any]:
        path = self.dataset_dir(self.resolve(ref)) / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def next_version(self, name: str) -> str:
        numbers = [int(v[1:]) for v in self.versions(name) if re.fullmatch(r"v\d+", v)]
        return f"v{max(numbers, default=0) + 1}"

    # -- querying -----------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with every view of the workspace; cheap, lock-free.

        A workspace on object storage is one fixed push, so its views are built
        once, in a database whose cursors every call hands out: the Parquet
        footers that binding a view reads cross the network once, not per query.
        """
        if not self.read_only:
            return self._create_views(duckdb.connect(":memory:"))
        if self._remote_database is None:
            con = duckdb.connect(":memory:")
            self.root.attach(con)
            self._remote_database = self._create_views(con)
        return self._remote_database.cursor()

    def refresh_catalog(self) -> None:
        """Rebuild ``catalog.duckdb`` (atomically) so external DuckDB clients see every artefact."""
        tmp = self.root / "tmp" / f"{owned_name('catalog')}.duckdb"
        tmp.parent.mkdir(exist_ok=True)
        try:
            self._create_views(duckdb.connect(str(tmp))).close()
            os.replace(tmp, self.root / "catalog.duckdb")
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        if self._catalog_root() != str(self.root):
            atomic_write_text(self.root / CATALOG_ROOT, str(self.root))

    def _catalog_root(self) -> str | None:
        """The root ``catalog.duckdb`` was built for; its views name files by absolute path."""
        try:
            return (self.root / CATALOG_ROOT).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Every view in ``con``: an empty table of the right shape where a kind has no file yet."""
        try:
            for name, sql in self._view_sql().items():
                if sql is None:
                    empty: pa.Table = schemas.EMPTY[name]()
                    con.register("_empty", empty)
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM _empty")
                    con.unregister("_empty")
                else:
                    con.execute(f"CREATE VIEW {name} AS {sql}")
            for name, sql in schemas.DERIVED_VIEWS.items():
                con.execute(f"CREATE VIEW {name} AS {sql}")
        except BaseException:
            con.close()
            raise
        return con

    def _view_sql(self) -> dict[str, str | None]:
        """Base views: SQL over the files present now, or None where there are none yet.

        The views name their files one by one rather than by glob: a connection is
        a snapshot of the workspace as it was when it opened, and an artefact that
        lands while a query runs can never join it half-way (binding and reading a
        glob are two separate listings of the folder).
        """
        out: dict[str, str | None] = {}
        for name, (pattern, reader) in schemas.BASE_VIEWS.items():
            files = sorted(self.root.glob(pattern))
            if not files:
                out[name] = None
                continue
            listed = "[" + ", ".join(sql_str(str(f)) for f in files) + "]"
            if reader == "parquet":
                out[name] = f"SELECT * FROM read_parquet({listed}, union_by_name = true)"
            else:
                columns = ", ".join(f"{sql_str(c)}: {sql_str(t)}" for c, t in schemas.JSON_COLUMNS[name].items())
                out[name] = f"SELECT * FROM read_json({listed}, columns = {{{columns}}}, format = 'auto')"
        return out

    def read_parquet(self, path: Path | RemotePath) -> pd.DataFrame:
        """One Parquet file of the workspace (``self.root / ...``), local or on object storage."""
        import pandas as pd

        return pd.read_parquet(path if isinstance(path, Path) else io.BytesIO(path.read_bytes()))

    def query(self, sql: str, params: list[Any] | None = None) -> Any:
        """Run one query on a fresh connection and return a pandas DataFrame."""
        con = self.connect()
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


# -- leftovers ------------------------------------------------------------------------------------


@dataclass
class Garbage:
    """What :func:`collect_garbage` removed, and the leftovers it kept because their owner may still be writing."""

    removed: list[str] = field(default_factory=list)  # paths relative to the root
    freed_bytes: int = 0
    kept: list[str] = field(default_factory=list)


def collect_garbage(ws: Workspace, everywhere: bool = True) -> Garbage:
    """Remove staging folders, catalog copies and temporary files that no running process owns.

    Looks at what ``tmp/`` holds and, with ``everywhere``, at every hidden ``*.tmp``
    of the workspace (an atomic write's temporary file) outside the Hugging Face cache.
    A leftover named by this machine's process ``pid`` goes once that process has
    ended; one whose owner cannot be checked once it is :data:`STALE_SECONDS` old.
    """
    out = Garbage()
    if ws.read_only:
        return out
    now = time.time()
    for path in _leftovers(ws, everywhere):
        try:
            if not _abandoned(path, now):
                out.kept.append(str(path.relative_to(ws.root)))
                continue
            size = _size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # removed meanwhile: by its owner, or by another clean-up
        out.removed.append(str(path.relative_to(ws.root)))
        out.freed_bytes += size
    return out


def _leftovers(ws: Workspace, everywhere: bool) -> Iterator[Path]:
    tmp = ws.root / "tmp"
    if tmp.is_dir():
        yield from sorted(tmp.iterdir())
    if not everywhere:
        return
    skip = {tmp, ws.indexes_dir / "hf"}  # the Hugging Face cache keeps its own files
    for folder, dirs, files in os.walk(ws.root):
        temporary = [name for name in [*dirs, *files] if name.startswith(".") and name.endswith(".tmp")]
        dirs[:] = [d for d in dirs if d not in temporary and Path(folder, d) not in skip]
        yield from (Path(folder, name) for name in sorted(temporary))


def _abandoned(path: Path, now: float) -> bool:
    owner = _OWNER.search(path.name)
    if owner and owner.group(1) == _MACHINE:
        return not process_alive(int(owner.group(2)))
    return now - _newest_change(path) > STALE_SECONDS


def _newest_change(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, _, files in os.walk(path):
            for name in files:
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except FileNotFoundError:
                    continue
            newest = max(newest, os.lstat(folder).st_mtime)
    return newest


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(Path(f, n).lstat().st_size for f, _, names in os.walk(path) for n in names
                   if Path(f, n).exists())
    return path.lstat().st_size
