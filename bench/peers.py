"""Two peer tools' n-gram decontamination, run on the same data as our exact stage, for side-by-side timing.

* :func:`datatrove_decont` — HuggingFace datatrove's ``NGramsDecontIndexer`` +
  ``NGramsDecontFilter`` (``datatrove.pipeline.decont``);
* :func:`lmeval_janitor` — EleutherAI lm-evaluation-harness's ``Janitor``
  (``lm_eval.decontamination.janitor``), its Python path, or its C++ path where
  the ``janitor_util`` helper has been built (see :func:`lmeval_janitor`).

Both take the benchmark as ``(prompt, answer)`` pairs and the synthetic
documents as plain strings (``synthscope.core.text.record_text(prompt, response)`` of
each record, the text our scan reads) and return a :class:`PeerResult`: which
document positions the tool marks contaminated, and how long the scan took,
single-process. Neither tool applies our rule (coverage of each benchmark field
by its 13- or 8-grams); each has its own, stated in its function's docstring,
so their flags are documents that *contain a hit*, not items with a coverage.

Installed for this module (into ``.venv``, with ``-c constraints.txt`` so torch
stays the CPU wheel): ``datatrove==0.10.1``, ``spacy==3.8.18`` (datatrove's
English word tokenizer is ``spacy.blank("en")``, no model download) and, to build
the janitor's C++ helper, ``pybind11==3.1.0``. lm-eval (0.4.13) was already there.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from synthscope.core.text import record_text

#: Where the janitor's C++ helper is built (never inside the repository: it is third-party code).
JANITOR_BUILD = Path("/tmp/janitor_build")

#: How to rebuild it (run from :data:`JANITOR_BUILD`, with ``janitor_util.cpp`` copied there from
#: EleutherAI/lm-evaluation-harness, ``scripts/clean_training_data/janitor_util.cpp``, commit 11d8a69).
JANITOR_BUILD_COMMAND = (
    "g++ -O3 -Wall -shared -std=c++11 -fPIC $(/work/main/.venv/bin/python -m pybind11 --includes) "
    "janitor_util.cpp -o janitor_util$(/work/main/.venv/bin/python -c "
    "\"import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))\")"
)


@dataclass
class PeerResult:
    """One peer tool's run over ``docs``.

    ``seconds`` is the scan/filter alone; ``index_seconds`` is building (and,
    for datatrove, writing and loading) the benchmark index. ``flagged`` are the
    sorted positions in ``docs`` the tool marks contaminated. ``failed`` are
    positions the tool raised on (counted as not flagged), and
    ``failed_items`` benchmark items it could not index; both are empty except
    for the janitor's C++ path (see :func:`lmeval_janitor`).
    """

    tool: str
    version: str
    path: str  # "python" or "C++"
    n: int
    seconds: float
    index_seconds: float
    mb: float  # 10**6 bytes of UTF-8 of docs
    flagged: list[int]
    cores: int = 1
    failed: list[int] = field(default_factory=list)
    failed_items: int = 0
    notes: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.mb / self.seconds if self.seconds else float("inf")


def utf8_mb(docs: Iterable[str]) -> float:
    """MB (10**6 bytes) of the UTF-8 encoding of ``docs``."""
    return sum(len(d.encode("utf-8")) for d in docs) / 1e6


# -- datatrove ---------------------------------------------------------------------------


def datatrove_decont(benchmark: list[tuple[str, str]], docs: list[str], n: int = 13,
                     find_query_ngrams: bool = False) -> PeerResult:
    """datatrove's n-gram decontamination of ``docs`` against ``benchmark``.

    **Rule.** Text is simplified (``simplify_text``: lower-case, every digit run
    to ``0``, punctuation to spaces, whitespace collapsed, NFD with combining
    marks dropped — no NFKC, so full-width letters stay as they are) and split
    into words by spaCy's blank English tokenizer. The index holds xxhash64
    hashes of the space-joined ``n``-grams of: every n-gram of the *answer*
    (``label``), and every n-gram that *crosses the boundary* from the end of
    the prompt (``query``) into the start of the answer. With the default
    ``find_query_ngrams=False`` n-grams lying wholly inside the prompt are **not**
    indexed, so an item with an empty answer has nothing indexed and a document
    that copies only a benchmark prompt is never flagged. A document is dropped
    (flagged) as soon as any one of its n-grams' hash is in the index: a single
    shared n-gram suffices, there is no coverage threshold.

    **How it is run.** datatrove's indexer gets its benchmark from lighteval
    tasks (its ``run`` always imports lighteval, which loads tasks from the HF
    hub, and its constructor refuses to run without lighteval). So the index is
    built with the indexer's own ``compute_hashes(label=answer, query=prompt)``
    on an indexer allocated with ``object.__new__`` (skipping only the
    dependency check) and written exactly as its ``run`` writes it: one
    ``<task>.index.hashes`` file of the distinct hashes as native ``uint64``.
    ``NGramsDecontFilter`` then loads that folder (its own loader) and its
    pipeline step ``run`` filters ``datatrove.data.Document`` objects; a
    document it does not forward is flagged. Config: datatrove's defaults
    (``NGramsDecontConfig``: xxhash 64-bit, default text normalisation,
    ``find_overlap_ngrams=True``) except ``n_grams=n`` — datatrove's default is
    12; we pass our 13 so both count the same window.
    """
    from datatrove.data import Document
    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer

    config = NGramsDecontConfig(n_grams=n, find_query_ngrams=find_query_ngrams)
    with tempfile.TemporaryDirectory(prefix="datatrove-index-") as folder:
        t0 = time.perf_counter()
        indexer = object.__new__(NGramsDecontIndexer)  # see the docstring: lighteval is not needed to hash
        indexer.__init__(output_folder=folder, config=config)
        hashes: set[int] = set()
        for prompt, answer in benchmark:
            hashes.update(indexer.compute_hashes(answer, prompt))
        _write_datatrove_index(Path(folder) / "benchmark.index.hashes", hashes, config.hash_config.np_descr)
        step = NGramsDecontFilter(index_folder=folder, config=config)
        step.load_index_hashes()
        index_seconds = time.perf_counter() - t0

        documents = [Document(text=text, id=str(i)) for i, text in enumerate(docs)]
        t0 = time.perf_counter()
        kept = {int(doc.id) for doc in step.run(iter(documents))}
        seconds = time.perf_counter() - t0
    flagged = [i for i in range(len(docs)) if i not in kept]
    return PeerResult(tool="datatrove NGramsDecontFilter", version=version("datatrove"), path="python", n=n,
                      seconds=seconds, index_seconds=index_seconds, mb=utf8_mb(docs), flagged=flagged,
                      notes=f"{len(hashes):,} hashes indexed; find_query_ngrams={find_query_ngrams}")


def _write_datatrove_index(path: Path, hashes: set[int], descr: str) -> None:
    """Write ``hashes`` as ``NGramsDecontIndexer.run`` does for a local folder."""
    with open(path, "wb") as fh:
        np.array(list(hashes), dtype=descr).tofile(fh)


# -- lm-eval janitor ---------------------------------------------------------------------


def lmeval_janitor(benchmark: list[tuple[str, str]], docs: list[str], n: int = 13,
                   path: str = "python") -> PeerResult:
    """lm-evaluation-harness's ``Janitor`` over ``docs``, against ``benchmark``.

    **Rule.** Each benchmark item is registered with ``register_contaminant``
    as one text, ``record_text(prompt, answer)`` (so its n-grams include those
    crossing the prompt/answer boundary). The janitor splits on whitespace
    only; its normalisation lower-cases ASCII letters and deletes ASCII
    punctuation (``string.punctuation``); no Unicode normalisation. A
    contaminant is stored as the set of its word ``ngram_n``-gram strings. A
    document is flagged when ``clean(doc)`` finds at least one of its
    n-grams in that set (observed in ``_split_chunks``, which ``clean`` feeds
    with exactly the contaminated n-grams it found; the returned chunks
    themselves are no test: a clean document under 200 characters also comes
    back as ``[]``). One shared n-gram suffices; there is no coverage threshold.

    Python-path quirk: a contaminant is normalised *before* it is split, a
    document's n-gram *after*, so a whitespace-separated token made only of
    punctuation (``#``, ``=``, ``+=``, ``-``) vanishes from the registered
    n-grams but stays as an empty word (a double space) in the document's:
    n-grams over such tokens, common in code, can never match.

    **Paths.** ``path="python"`` runs ``register_contaminant_python`` /
    ``clean_python`` (what ``register_contaminant`` / ``clean`` dispatch to
    without the helper; called directly because the dispatchers print a
    warning on every call). ``path="C++"`` needs the ``janitor_util`` pybind11
    module (not in the lm-eval wheel), built into :data:`JANITOR_BUILD` with
    :data:`JANITOR_BUILD_COMMAND`; it registers with ``register_contaminant_cpp``
    and extracts each document's n-grams with
    ``janitor_util.clean_ngram_with_indices``. The shipped ``clean_cpp`` hands
    *every* n-gram of the document to ``_split_chunks`` without looking them
    up in the contaminant set, so it would flag every document with at least
    one n-gram; we keep only the n-grams in the set — what ``clean_python``
    does — and then call ``_split_chunks`` as ``clean_cpp`` does. The C++
    tokenizer also differs: it works on UTF-8 bytes, ends a word after 11 bytes
    (dropping the 12th), and never emits a text's last n-gram unless the text
    ends in whitespace. Where that 11-byte cut falls inside a multi-byte
    character the helper's result is not valid UTF-8 and pybind11 raises
    ``UnicodeDecodeError``: such documents are listed in ``failed`` (and not
    flagged), such items counted in ``failed_items`` (and not indexed).
    """
    if path not in ("python", "C++"):
        raise ValueError(f"path must be 'python' or 'C++', not {path!r}")
    module = _janitor_module()
    if path == "C++":
        module.janitor_util = _janitor_util()
    jan = _observing_janitor(module)(ngram_n=n)
    register = jan.register_contaminant_python if path == "python" else jan.register_contaminant_cpp

    t0 = time.perf_counter()
    failed_items = 0
    for prompt, answer in benchmark:
        try:
            register(record_text(prompt, answer))
        except UnicodeDecodeError:
            failed_items += 1
    index_seconds = time.perf_counter() - t0

    clean = jan.clean_python if path == "python" else jan.clean_cpp_checked
    flagged, failed = [], []
    t0 = time.perf_counter()
    for i, doc in enumerate(docs):
        try:
            clean(doc)
        except UnicodeDecodeError:
            failed.append(i)
            continue
        if jan.found:
            flagged.append(i)
    seconds = time.perf_counter() - t0
    return PeerResult(tool="lm-eval Janitor", version=version("lm_eval"), path=path, n=n, seconds=seconds,
                      index_seconds=index_seconds, mb=utf8_mb(docs), flagged=flagged, failed=failed,
                      failed_items=failed_items, notes=f"{len(jan.dirt_ngrams):,} n-grams registered")


def janitor_cpp_available() -> bool:
    """Whether the janitor's C++ helper can be imported (from :data:`JANITOR_BUILD` or the path)."""
    try:
        _janitor_util()
    except ImportError:
        return False
    return True


def _janitor_module() -> ModuleType:
    """``lm_eval.decontamination.janitor``, imported without its import-time warning and traceback."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return importlib.import_module("lm_eval.decontamination.janitor")


def _janitor_util() -> ModuleType:
    """The built ``janitor_util`` module; a clear ``ImportError`` if it has not been built."""
    if JANITOR_BUILD.is_dir() and str(JANITOR_BUILD) not in sys.path:
        sys.path.append(str(JANITOR_BUILD))
    try:
        return importlib.import_module("janitor_util")
    except ImportError as exc:
        raise ImportError(f"the janitor's C++ helper janitor_util is not importable: build it in {JANITOR_BUILD} "
                          f"with `{JANITOR_BUILD_COMMAND}` (see bench/peers.py)") from exc


def _observing_janitor(module: ModuleType) -> type:
    """A ``Janitor`` subclass that records whether its last clean found a contaminated n-gram (``found``)."""

    class ObservingJanitor(module.Janitor):  # type: ignore[name-defined, misc]
        found = False

        def _split_chunks(self, dirty_string: str, dirty_parts: Iterable[tuple[Any, int, int]]) -> list[str]:
            parts: Iterator[tuple[Any, int, int]] = iter(dirty_parts)
            first = next(parts, None)
            self.found = first is not None
            return super()._split_chunks(dirty_string, parts if first is None else itertools.chain([first], parts))

        def clean_cpp_checked(self, dirty_string: str) -> list[str]:
            """``clean_cpp``, keeping only the n-grams that are registered contaminants."""
            grams = module.janitor_util.clean_ngram_with_indices(dirty_string, self.delete_chars, self.ngram_n)
            dirt = self.dirt_ngrams
            return self._split_chunks(dirty_string, (g for g in grams if g[0] in dirt))

    return ObservingJanitor
