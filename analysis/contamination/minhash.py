"""Near-duplicate contamination: MinHash LSH over word shingles, confirmed by exact Jaccard.

Shingles, Jaccard and MinHash
    The sets and signatures are :mod:`synthscope.algorithms.minhash`'s (its
    docstring has the maths); this stage stores, bands and confirms them.

LSH banding
    A signature is cut into ``b`` bands of ``r`` values and two texts are
    candidates when any band is equal — ``datasketch.MinHashLSH``'s rule, with
    its ``b`` and ``r`` (:func:`~synthscope.algorithms.lsh.lsh_params`) —
    which happens with probability ``P(J) = 1 - (1 - J**r)**b``: an S-curve whose steep part sits
    near ``lsh_threshold`` (datasketch picks ``b``, ``r`` with ``b·r <= num_perm``
    minimising the integrated false-positive and false-negative probabilities).
    At the defaults (``lsh_threshold = 0.3``: ``b = 37``, ``r = 3``)
    ``P(0.2) = 0.26``, ``P(0.4) = 0.91``, ``P(0.5) = 0.993``, ``P(0.6) = 0.9999``.

    The benchmark fields' signatures form a band index (one 64-bit key per band,
    sorted); each batch of record signatures is joined with it in numpy
    (:class:`~synthscope.algorithms.lsh.BandIndex`, whose docstring shows why the
    pairs are exactly those ``MinHashLSH.query`` returns), and the distinct
    ``(record, item)`` pairs are the candidates. Records are never joined with
    records, so boilerplate shared by many records costs nothing quadratic.

    Every candidate is then **confirmed by its exact Jaccard**, computed on the
    full shingle sets (of 64-bit hashes; a collision among ``n`` shingles has
    probability about ``n**2 / 2**65``), and that exact value is what is
    reported (all candidates of a row group at once:
    :func:`~synthscope.algorithms.minhash.pair_jaccards`, the same floats as one
    :func:`~synthscope.algorithms.minhash.jaccard` per pair). Confirmation
    removes LSH's false positives but cannot bring back a pair the bands
    missed, so the band curve must be near 1 at ``flag_at``:
    that is why ``lsh_threshold`` (0.3) sits well below ``flag_at`` (0.5), and
    why :meth:`NearDuplicateConfig.candidate_probability` is there to check a
    setting.

Number-substituted variants
    A problem copied with its numbers changed (GSM8K style) loses every shingle
    that contains a number. With ``mask_numbers``, a second shingle set is made
    after replacing every number token (a token of Unicode decimal digits only)
    by one placeholder; shingles made of placeholders only are dropped (a table
    of numbers says nothing about which problem it belongs to). Both sets are
    signed and searched, and both Jaccards are confirmed exactly::

        number_substituted = masked_jaccard >= flag_at  and  jaccard < flag_at

Fields and sides
    A benchmark item's prompt and answer are indexed separately (a leaked answer
    counts even when the question was never copied). A synthetic record is
    signed per side, its prompt and its answer, so a lightly edited question
    followed by a long new answer is not diluted; confirmation compares the
    benchmark field with the record's prompt, its answer and its whole text
    (:func:`synthscope.core.text.record_text`), and the reported ``jaccard`` is the
    largest, with ``field`` (benchmark side) and ``record_field`` (``prompt``,
    ``answer`` or ``record``) saying where it was found. ``masked_jaccard`` is
    the largest masked Jaccard over the same combinations.

Stop shingles
    A shingle found in at least ``max(stop_item_min, ceil(stop_item_share *
    items))`` distinct benchmark field texts is the benchmark's format (``from
    typing import list def``, ``for i in range len``, the lettered choices),
    not evidence. It is removed from both sides before comparing, so the
    confirmed Jaccard is that of what is left::

        J' = |(A - S) ∩ (B - S)| / |(A - S) ∪ (B - S)|

    with ``S`` the stop shingles (the masked sets have their own). Item
    signatures are made from ``A - S``; record signatures stay those of the
    whole record (they are stored once per dataset, whatever the benchmark),
    so LSH estimates ``J(A - S, B)``, at most ``J'``: ``lsh_threshold`` sits far
    enough below ``flag_at`` for that (HumanEval has 39 stop shingles among its
    13,010). Only the benchmark side is learned: counting the corpus's records
    per shingle would need a pass over every record's shingles, which this
    stage avoids. ``stop_item_share = 0`` turns it off.

Storage
    Signatures of a synthetic dataset version are written once, atomically, to
    ``indexes/minhash/<name>/<version>/<config_key>.parquet`` — plain arrays, no
    pickles: one row per signed side with ``record_id``, ``row_group``, ``row``
    (the record's place in ``records.parquet``), ``side``, ``masked``,
    ``numbers`` and ``signature`` (``fixed_size_list<uint32>[num_perm]``). The
    key names everything that changes a signature (shingle size, ``num_perm``,
    seed, masking, format); a dataset version never changes, so a later scan
    with the same key reads the file instead of signing again.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.algorithms.lsh import BandIndex, lsh_params
from synthscope.algorithms.minhash import (
    Shingles,
    _mask_all,
    pair_jaccards,
    shingle,
    shingle_windows,
    signatures,
)
from synthscope.compute.engine import Engine, LocalEngine, RowGroup, read_table, row_groups
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace, temp_path

FIELDS = ("prompt", "answer")
RECORD_FIELDS = ("prompt", "answer", "record")
FORMAT = 1  # bump when the signature file layout or the shingle definition changes

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class NearDuplicateConfig:
    """Settings of the near-duplicate stage (``[contamination.near_duplicate]`` in ``synthscope.toml``)."""

    shingle: int = 5
    """Words per shingle (``k``). Smaller finds looser copies and more coincidences."""
    num_perm: int = 128
    """MinHash permutations per signature; the Jaccard estimate's error shrinks as ``1/sqrt(num_perm)``."""
    lsh_threshold: float = 0.3
    """Jaccard at which LSH banding turns steep; keep it well below ``flag_at`` (see the module docstring)."""
    flag_at: float = 0.5
    """Exact Jaccard from which a pair is a near-duplicate (also the masked Jaccard for number substitution)."""
    top_k: int = 5
    """Evidence rows kept per benchmark item."""
    mask_numbers: bool = True
    """Also compare with every number token replaced by one placeholder (number-substituted variants)."""
    seed: int = 1
    """Seed of datasketch's permutations; signatures of different seeds cannot be compared."""
    stop_item_share: float = 0.02
    """Share of the benchmark's items from which a shingle is the benchmark's format, not evidence (0: off)."""
    stop_item_min: int = 3
    """Fewest distinct benchmark field texts that make a stop shingle, whatever the share."""

    def __post_init__(self) -> None:
        if self.shingle < 1:
            raise ValueError(f"shingle must be a positive number of words, got {self.shingle}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be at least 2 (LSH needs two bands), got {self.num_perm}")
        if not 0 < self.lsh_threshold < 1:
            raise ValueError(f"lsh_threshold must be between 0 and 1, got {self.lsh_threshold}")
        if not 0 < self.flag_at <= 1:
            raise ValueError(f"flag_at must be in (0, 1], got {self.flag_at}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 <= self.stop_item_share <= 1:
            raise ValueError(f"stop_item_share must be between 0 (off) and 1, got {self.stop_item_share}")
        if self.stop_item_min < 2:
            raise ValueError(f"stop_item_min must be at least 2 (a stop shingle is shared), got {self.stop_item_min}")

    def stop_at(self, items: int) -> int | None:
        """Distinct benchmark field texts from which a shingle is a stop shingle; ``None`` when off."""
        if self.stop_item_share <= 0:
            return None
        return max(self.stop_item_min, math.ceil(self.stop_item_share * items - 1e-9))

    @property
    def bands(self) -> tuple[int, int]:
        """``(b, r)``: the bands and rows per band datasketch chooses for ``lsh_threshold``."""
        return lsh_params(self.lsh_threshold, self.num_perm)

    def candidate_probability(self, jaccard: float) -> float:
        """``1 - (1 - J**r)**b``: the chance LSH proposes a pair of Jaccard ``J`` (per signature pair)."""
        b, r = self.bands
        return float(1 - (1 - jaccard**r) ** b)

    @property
    def key(self) -> str:
        """Names every setting that changes a signature; the signature file is ``<key>.parquet``."""
        return f"k{self.shingle}-p{self.num_perm}-s{self.seed}-{'masked' if self.mask_numbers else 'plain'}-f{FORMAT}"


# -- shingles -------------------------------------------------------------------------------


# -- signatures -----------------------------------------------------------------------------


_SIGNATURE_COLUMNS = ("record_id", "row_group", "row", "side", "masked", "numbers", "signature")


def _signature_schema(num_perm: int) -> pa.Schema:
    return pa.schema([
        ("record_id", pa.string()), ("row_group", pa.int32()), ("row", pa.int32()), ("side", pa.int8()),
        ("masked", pa.bool_()), ("numbers", pa.bool_()), ("signature", pa.list_(pa.uint32(), num_perm)),
    ])


def _sign_row_group(task: RowGroup, config: NearDuplicateConfig) -> pa.Table:
    """Signatures of one row group's records: per side, a plain row and, if it has numbers, a masked row."""
    table = read_table(task, ["record_id", "prompt", "answer"])
    ids = np.asarray(table.column("record_id").to_pylist(), dtype=object)
    parts: dict[str, list[Any]] = {name: [] for name in _SIGNATURE_COLUMNS}

    def add(rows: np.ndarray, side: int, masked: bool, numbers: np.ndarray, sigs: np.ndarray) -> None:
        parts["record_id"].append(ids[rows])
        parts["row_group"].append(np.full(len(rows), task.index, dtype=np.int32))
        parts["row"].append(rows.astype(np.int32))
        parts["side"].append(np.full(len(rows), side, dtype=np.int8))
        parts["masked"].append(np.full(len(rows), masked))
        parts["numbers"].append(numbers)
        parts["signature"].append(sigs)

    for side, name in enumerate(FIELDS):
        texts = [t or "" for t in table.column(name).to_pylist()]
        plain = shingle_windows(texts, config.shingle)
        signed = np.flatnonzero(plain.sizes() > 0)
        numbers = np.zeros(len(texts), dtype=bool)
        if config.mask_numbers:
            masked_texts, numbers = _mask_all(texts)
            with_numbers = np.flatnonzero(numbers)
            masked = shingle_windows([masked_texts[i] for i in with_numbers], config.shingle, premasked=True)
            kept = masked.sizes() > 0  # a text of numbers only has nothing left to sign
            add(with_numbers[kept], side, True, np.ones(int(kept.sum()), dtype=bool),
                signatures(masked.subset(np.flatnonzero(kept)), config.num_perm, config.seed))
        add(signed, side, False, numbers[signed], signatures(plain.subset(signed), config.num_perm, config.seed))

    columns = {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}
    sigs = columns.pop("signature").reshape(-1)
    schema = _signature_schema(config.num_perm)
    arrays = [pa.array(columns[name], type=schema.field(name).type) for name in _SIGNATURE_COLUMNS[:-1]]
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(sigs, type=pa.uint32()), config.num_perm))
    return pa.Table.from_arrays(arrays, schema=schema)


def signature_path(ws: Workspace, synthetic: DatasetRef, config: NearDuplicateConfig) -> Path:
    """Where the signatures of ``synthetic`` (a resolved ref) under ``config`` live."""
    return ws.indexes_dir / "minhash" / synthetic.name / str(synthetic.version) / f"{config.key}.parquet"


def sign_dataset(ws: Workspace, synthetic: DatasetRef, config: NearDuplicateConfig,
                 progress: Progress | None = None, engine: Engine | None = None) -> Path:
    """The signature file of ``synthetic``, written once; a later call with the same key just returns it.

    Row groups are signed on ``engine`` (default: every core of this machine)
    and streamed into a temporary file next to the final one, renamed into place
    when complete: memory stays bounded and a reader never sees half a file.
    """
    report = progress or (lambda done, total, message: None)
    synthetic = ws.resolve(synthetic)
    path = signature_path(ws, synthetic, config)
    if path.is_file():
        rows = pq.ParquetFile(ws.records_path(synthetic)).metadata.num_rows
        report(rows, rows, f"reusing MinHash signatures of {synthetic} ({path.name})")
        return path
    tasks = row_groups(ws.records_path(synthetic))
    total = sum(t.rows for t in tasks)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    schema = _signature_schema(config.num_perm).with_metadata({
        "synthscope.minhash": json.dumps({**asdict(config), "key": config.key, "dataset": str(synthetic),
                                          "scheme": "affine32", "format": FORMAT}),
    })
    done = 0
    report(0, total, f"signing {synthetic}")
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            writer.write_table(schema.empty_table())  # a file with no rows is still complete
            engine = engine or LocalEngine()
            for task, table in engine.map(functools.partial(_sign_row_group, config=config), tasks):
                writer.write_table(table.replace_schema_metadata(schema.metadata))
                done += task.rows
                report(done, total, f"signing {synthetic}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_signatures(path: Path) -> pa.Table:
    """A signature file, whole (see :func:`sign_dataset` for its columns)."""
    return pq.read_table(path)


def signature_matrix(column: pa.ChunkedArray | pa.Array, num_perm: int) -> np.ndarray:
    """A ``fixed_size_list<uint32>`` column as a ``(rows, num_perm)`` array."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.empty((0, num_perm), dtype=np.uint32)
    values = array.values.slice(array.offset * num_perm, len(array) * num_perm)
    return values.to_numpy(zero_copy_only=False).reshape(len(array), num_perm)


# -- the benchmark side ---------------------------------------------------------------------


@dataclass
class _Benchmark:
    """Shingle sets and band indexes of every benchmark item's fields."""

    items: np.ndarray  # the benchmark's `item` values
    plain: Shingles  # every field's set, field-major: field f of position pos is text f * len(items) + pos
    masked: Shingles | None
    index_plain: BandIndex  # the non-empty plain sets' signatures
    index_masked: BandIndex | None
    owner_plain: np.ndarray  # int64: the benchmark position of each indexed signature
    owner_masked: np.ndarray
    too_short: list[dict[str, Any]]
    stop_plain: np.ndarray  # uint64, sorted: the stop shingles (empty when off)
    stop_masked: np.ndarray

    @classmethod
    def build(cls, benchmark: pd.DataFrame, config: NearDuplicateConfig) -> _Benchmark:
        missing = {"item", "prompt", "answer"} - set(benchmark.columns)
        if missing:
            raise ValueError(f"the benchmark frame needs columns item, prompt, answer; missing {sorted(missing)}")
        plain, masked, too_short = [], [], []
        ids = benchmark["item_id"].tolist() if "item_id" in benchmark else [None] * len(benchmark)
        for name in FIELDS:
            texts = [t if isinstance(t, str) else "" for t in benchmark[name].tolist()]
            plain.append(shingle(texts, config.shingle))
            if config.mask_numbers:
                masked.append(shingle(texts, config.shingle, masked=True))
            for pos in np.flatnonzero(plain[-1].sizes() == 0):
                if texts[pos].strip():
                    too_short.append({"item": int(benchmark["item"].iloc[pos]), "item_id": ids[pos], "field": name})
        at = config.stop_at(len(benchmark))
        stop_plain, stop_masked = stop_shingles(plain, at), stop_shingles(masked, at)
        plain_sets = _concat([without(sets, stop_plain) for sets in plain])
        masked_sets = _concat([without(sets, stop_masked) for sets in masked]) if config.mask_numbers else None
        index_plain, owner_plain = _index(plain_sets, len(benchmark), config)
        index_masked, owner_masked = _index(masked_sets, len(benchmark), config) if masked_sets is not None \
            else (None, np.empty(0, dtype=np.int64))
        return cls(benchmark["item"].to_numpy(), plain_sets, masked_sets, index_plain, index_masked,
                   owner_plain, owner_masked, too_short, stop_plain, stop_masked)


def _concat(fields: list[Shingles]) -> Shingles:
    """Per-field shingle sets (each of every item) as one :class:`Shingles`, field-major (text ``f * items + pos``)."""
    values = np.concatenate([sets.values for sets in fields])
    sizes = np.concatenate([sets.sizes() for sets in fields])
    return Shingles(values, np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))


def _index(sets: Shingles, items: int, config: NearDuplicateConfig) -> tuple[BandIndex, np.ndarray]:
    """A band index of the non-empty sets' signatures (an empty set, all stop shingles or too short, is never
    proposed), and the benchmark position each indexed row belongs to."""
    signed = np.flatnonzero(sets.sizes() > 0)
    sigs = signatures(sets.subset(signed), config.num_perm, config.seed)
    return BandIndex.build(sigs, *config.bands), signed % max(items, 1)


def stop_shingles(sets: list[Shingles], at: int | None) -> np.ndarray:
    """The shingles found in at least ``at`` distinct texts of ``sets`` (every field's sets; a text
    repeated in several items or fields counts once), sorted; empty when ``at`` is ``None``."""
    if at is None or not sets:
        return np.empty(0, dtype=np.uint64)
    distinct = {sets_.of(i).tobytes(): sets_.of(i) for sets_ in sets for i in range(len(sets_))}
    values = np.concatenate([np.empty(0, dtype=np.uint64), *distinct.values()])
    found, df = np.unique(values, return_counts=True)  # each text's set is distinct: df = texts containing it
    return found[df >= at]


def without(sets: Shingles, stop: np.ndarray) -> Shingles:
    """``sets`` with the shingles in ``stop`` (sorted) removed."""
    if len(stop) == 0 or len(sets.values) == 0:
        return sets
    keep = ~np.isin(sets.values, stop, assume_unique=False)
    offsets = np.concatenate(([0], np.cumsum(keep)))[sets.offsets].astype(np.int64)
    return Shingles(sets.values[keep], offsets)


# -- the scan -------------------------------------------------------------------------------

OUTPUT_COLUMNS = ["item", "record_id", "field", "record_field", "jaccard", "masked_jaccard", "number_substituted"]


PASSES = 3  # the stage reads the rows three times: signing, matching signatures, confirming candidates


def near_duplicates(ws: Workspace, benchmark: pd.DataFrame, synthetic: DatasetRef,
                    config: NearDuplicateConfig | None = None, progress: Progress | None = None,
                    engine: Engine | None = None) -> pd.DataFrame:
    """Each benchmark item's nearest synthetic records by exact shingle Jaccard.

    ``benchmark`` has one row per item: ``item`` (int), ``item_id``, ``prompt``,
    ``answer``. Synthetic records are signed once (:func:`sign_dataset`), every
    signature is joined on its band keys with band indexes of the benchmark fields
    (:class:`~synthscope.algorithms.lsh.BandIndex`: the pairs ``MinHashLSH.query``
    would return), and every candidate pair is confirmed by its exact Jaccard. Returns, per item, its
    ``top_k`` records (:data:`OUTPUT_COLUMNS`): ranked flagged first (``jaccard >=
    flag_at``, then number-substituted), then by ``jaccard`` and ``masked_jaccard``
    descending, ties by ``record_id``; rows come sorted by ``item`` then that rank.
    ``masked_jaccard`` is NaN when ``mask_numbers`` is off. ``attrs["too_short"]``
    lists the non-empty benchmark fields shorter than ``shingle`` words (skipped),
    ``attrs["stop_shingles"]`` counts the benchmark's stop shingles (see the module
    docstring), ``attrs["candidates"]`` counts the (item, record) pairs LSH proposed.
    """
    config = config or NearDuplicateConfig()
    report = progress or (lambda done, total, message: None)
    synthetic = ws.resolve(synthetic)
    started = time.perf_counter()
    bench = _Benchmark.build(benchmark.reset_index(drop=True), config)
    if bench.too_short:
        report(0, 1, f"{len(bench.too_short)} benchmark fields shorter than {config.shingle} words are skipped")
    # Three passes over the rows, one count that never goes back: signing, matching, confirming (PASSES).
    rows = pq.ParquetFile(ws.records_path(synthetic)).metadata.num_rows

    def passing(number: int) -> Progress:
        return lambda done, total, message="": report(
            number * rows + int(rows * min(done, total) / max(total, 1)), PASSES * rows, message)

    path = sign_dataset(ws, synthetic, config, passing(0), engine)
    found = candidates(path, bench, config, lambda done, total: passing(1)(
        done, total, f"matching signatures of {synthetic}"))
    pairs = _confirm(ws, synthetic, bench, found, config, passing(2))
    report(PASSES * rows, PASSES * rows, f"confirmed {len(pairs):,} pairs of {synthetic}")
    out = _rank(pairs, config)
    out.attrs["too_short"] = bench.too_short
    out.attrs["stop_shingles"] = len(bench.stop_plain)
    out.attrs["candidates"] = len(found)
    out.attrs["seconds"] = round(time.perf_counter() - started, 3)
    return out


def candidates(path: Path, bench: _Benchmark, config: NearDuplicateConfig,
               progress: Callable[[int, int], None] | None = None, batch_rows: int = 32_768) -> np.ndarray:
    """Every distinct ``(row_group, row, position)`` whose record has a signature sharing a band with the
    benchmark field at ``position`` — sorted, ``(n, 3)`` int64.

    The signature file is read in batches of ``batch_rows``; each batch is joined
    with the benchmark's band indexes at once (see :mod:`synthscope.algorithms.lsh`
    for why the pairs are exactly ``MinHashLSH.query``'s). Plain record signatures
    meet the plain index; masked ones, and plain ones of a side without numbers (its
    own masked version), meet the masked index. Memory: a batch's signatures and
    band keys, the join's pieces, and the distinct candidates — never a records x
    items matrix.
    """
    # pre_buffer off: with it, iter_batches buffers every row group's columns before the first batch, and this
    # stage's memory grew with the corpus (about 1.4 KB a record; 634 MB at 400k records against 34 MB without).
    parquet = pq.ParquetFile(path, pre_buffer=False)
    total, done = parquet.metadata.num_rows, 0
    found: list[np.ndarray] = [np.empty((0, 3), dtype=np.int64)]
    columns = ["row_group", "row", "masked", "numbers", "signature"]
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        sigs = signature_matrix(batch.column("signature"), config.num_perm)
        masked = batch.column("masked").to_numpy(zero_copy_only=False)
        numbers = batch.column("numbers").to_numpy(zero_copy_only=False)
        joins = [(np.flatnonzero(~masked), bench.index_plain, bench.owner_plain)]
        if bench.index_masked is not None:
            joins.append((np.flatnonzero(masked | ~numbers), bench.index_masked, bench.owner_masked))
        rows, positions = [], []
        for which, index, owner in joins:
            q, i = index.query(sigs[which])
            rows.append(which[q])
            positions.append(owner[i])
        at = np.concatenate(rows)
        found.append(_distinct_rows(np.column_stack([batch.column("row_group").to_numpy()[at].astype(np.int64),
                                                     batch.column("row").to_numpy()[at].astype(np.int64),
                                                     np.concatenate(positions)])))
        done += len(sigs)
        if progress:
            progress(done, total)
    return _distinct_rows(np.concatenate(found))


def _distinct_rows(rows: np.ndarray) -> np.ndarray:
    """The distinct rows of an ``(n, 3)`` int64 array, sorted lexicographically."""
    if len(rows) == 0:
        return rows
    rows = rows[np.lexsort(rows.T[::-1])]
    keep = np.r_[True, np.any(rows[1:] != rows[:-1], axis=1)]
    return rows[keep]


_COMBOS = [(f, s) for f in range(len(FIELDS)) for s in range(len(RECORD_FIELDS))]  # (benchmark field, record text)
CONFIRM_LOOKUPS = 1 << 21  # benchmark shingles looked up at once in confirmation: about 50 bytes of work arrays each


def _confirm(ws: Workspace, synthetic: DatasetRef, bench: _Benchmark, found: np.ndarray,
             config: NearDuplicateConfig, report: Progress) -> pd.DataFrame:
    """Exact Jaccards of every candidate ``(row_group, row, position)``, best over fields and record texts.

    Per row group, the candidate records' three texts (prompt, answer, whole
    record) are shingled once, stop shingles removed, and every (benchmark field,
    record text) Jaccard of its candidates is computed in batches
    (:func:`~synthscope.algorithms.minhash.pair_jaccards`), plain and masked; a
    batch looks up at most about :data:`CONFIRM_LOOKUPS` benchmark shingles, so
    a row group with very many candidates does not need memory in proportion.
    See :func:`_best` for which combination is reported.
    """
    tasks = {t.index: t for t in row_groups(ws.records_path(synthetic))}
    total, done = int(np.count_nonzero(np.any(np.diff(found[:, :2], axis=0, prepend=-1) != 0, axis=1))), 0
    # Benchmark shingles one candidate looks up: its fields' plain and masked sets, against three record texts.
    sizes = bench.plain.sizes() + (bench.masked.sizes() if bench.masked is not None else 0)
    cost = len(RECORD_FIELDS) * sizes.reshape(len(FIELDS), -1).sum(axis=0)
    frames: list[pd.DataFrame] = []
    group_starts = np.flatnonzero(np.r_[True, found[1:, 0] != found[:-1, 0]]) if len(found) else np.empty(0, int)
    for start, stop in zip(group_starts, np.r_[group_starts[1:], len(found)].astype(int)):
        g, rows, pos = int(found[start, 0]), found[start:stop, 1], found[start:stop, 2]
        wanted, j = np.unique(rows, return_inverse=True)
        table = read_table(tasks[g], ["record_id", "prompt", "answer"]).take(pa.array(wanted, type=pa.int64()))
        ids = np.asarray(table.column("record_id").to_pylist(), dtype=object)
        prompts = [p or "" for p in table.column("prompt").to_pylist()]
        answers = [a or "" for a in table.column("answer").to_pylist()]
        texts = [*prompts, *answers, *(record_text(p, a) for p, a in zip(prompts, answers))]
        plain = without(shingle(texts, config.shingle), bench.stop_plain)
        masked = without(shingle(texts, config.shingle, masked=True), bench.stop_masked) \
            if bench.masked is not None else None
        batch = np.cumsum(cost[pos]) // CONFIRM_LOOKUPS  # consecutive candidates, about that many look-ups each
        for first, last in zip(*_runs(batch)):
            best, jac, mjac = _best(bench, pos[first:last], j[first:last], len(wanted), plain, masked)
            kept = np.flatnonzero(best >= 0)
            frames.append(pd.DataFrame({
                "item": bench.items[pos[first:last][kept]], "record_id": ids[j[first:last][kept]],
                "field": np.asarray(FIELDS, dtype=object)[[_COMBOS[c][0] for c in best[kept]]],
                "record_field": np.asarray(RECORD_FIELDS, dtype=object)[[_COMBOS[c][1] for c in best[kept]]],
                "jaccard": jac[kept], "masked_jaccard": mjac[kept],
            }))
        done += len(wanted)
        report(done, total, f"confirming candidates of {synthetic}")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS[:-1])


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[first, last)`` of each run of equal consecutive labels."""
    first = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    return first, np.r_[first[1:], len(labels)].astype(np.int64)


def _best(bench: _Benchmark, pos: np.ndarray, j: np.ndarray, n: int, plain: Shingles,
          masked: Shingles | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For candidates (benchmark position ``pos``, record ``j`` of ``n``; record text ``s`` is set ``s * n + j``):
    the best combination (index into :data:`_COMBOS`, -1 when none), its Jaccard, and the best masked Jaccard.

    The best is the first combination, in the order benchmark field then record
    text, with the largest ``(jaccard, masked_jaccard)`` (a missing masked
    Jaccard counts as -1); a benchmark field with no shingles is not compared.
    ``masked_jaccard`` is the largest over the combinations compared (NaN when
    masking is off or nothing was compared).
    """
    items = len(bench.items)
    left = np.concatenate([f * items + pos for f, _ in _COMBOS])  # benchmark field f of each candidate
    right = np.concatenate([s * n + j for _, s in _COMBOS])  # record text s of each candidate
    jac = pair_jaccards(bench.plain, left, plain, right).reshape(len(_COMBOS), -1)
    if bench.masked is not None and masked is not None:
        mjac = pair_jaccards(bench.masked, left, masked, right).reshape(len(_COMBOS), -1)
    else:
        mjac = np.full_like(jac, np.nan)
    compared = (bench.plain.sizes()[left] > 0).reshape(len(_COMBOS), -1)
    ranked = np.where(np.isnan(mjac), -1.0, mjac)
    best = np.full(len(pos), -1)
    best_jac, best_ranked = np.full(len(pos), -1.0), np.full(len(pos), -1.0)
    for c in range(len(_COMBOS)):
        better = compared[c] & ((jac[c] > best_jac) | ((jac[c] == best_jac) & (ranked[c] > best_ranked)))
        best = np.where(better, c, best)
        best_jac = np.where(better, jac[c], best_jac)
        best_ranked = np.where(better, ranked[c], best_ranked)
    best_masked = np.fmax.reduce(np.where(compared, mjac, np.nan), axis=0)  # NaN-ignoring; NaN if none compared
    return best, best_jac, best_masked


def _rank(pairs: pd.DataFrame, config: NearDuplicateConfig) -> pd.DataFrame:
    if pairs.empty:
        return pd.DataFrame({
            "item": pd.Series(dtype="int64"), "record_id": pd.Series(dtype=object), "field": pd.Series(dtype=object),
            "record_field": pd.Series(dtype=object), "jaccard": pd.Series(dtype="float64"),
            "masked_jaccard": pd.Series(dtype="float64"), "number_substituted": pd.Series(dtype=bool),
        })
    pairs = pairs.copy()
    pairs["item"] = pairs["item"].astype("int64")
    pairs["jaccard"] = pairs["jaccard"].astype("float64")
    pairs["masked_jaccard"] = pairs["masked_jaccard"].astype("float64")
    pairs["number_substituted"] = ((pairs["masked_jaccard"] >= config.flag_at)
                                   & (pairs["jaccard"] < config.flag_at)).astype(bool)
    # 0: a near-duplicate, 1: a number-substituted variant, 2: neither
    pairs["_flag"] = np.where(pairs["jaccard"] >= config.flag_at, 0, np.where(pairs["number_substituted"], 1, 2))
    pairs["_masked"] = pairs["masked_jaccard"].fillna(-1.0)
    pairs = pairs.sort_values(["item", "_flag", "jaccard", "_masked", "record_id"],
                              ascending=[True, True, False, False, True], kind="stable")
    pairs = pairs.groupby("item", sort=False).head(config.top_k)
    return pairs[OUTPUT_COLUMNS].reset_index(drop=True)
