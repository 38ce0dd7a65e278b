"""The evidence viewer: a benchmark item beside each matching synthetic record, shared spans marked.

Marks: the n-grams the exact stage matched (yellow), or, for a pair no n-gram
matched, the word runs both texts share in order (green, "aligned"); the best
semantic windows are shaded blue. Every piece of text is HTML-escaped, and every id
in a label or line of Markdown goes through :func:`~synthscope.dashboard.components.safe.md`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import streamlit as st

from synthscope.contamination.results import EvidenceRecord, ItemEvidence
from synthscope.dashboard.components.safe import for_badge, md
from synthscope.dashboard.components.widgets import percent, score

# Rendered with st.html, not st.markdown: no Markdown, LaTeX or emoji-shortcode pass may touch the text.
_BLOCK = ('<pre class="synthscope-evidence" style="white-space: pre-wrap; word-break: break-word; '
          'max-height: 28rem; overflow: auto; margin: 0; padding: 0.6rem 0.8rem; border-radius: 0.4rem; '
          'background: rgba(128, 128, 128, 0.08); font-size: 0.85rem; line-height: 1.45;">{body}</pre>')
MARK_COLOURS = {"exact": "#ffd54f", "aligned": "#a5d6a7"}
_MARK = ('<mark class="synthscope-{kind}" style="background-color: {colour}; color: inherit; padding: 0 1px;">'
         '{text}</mark>')
_WINDOW = ('<span class="synthscope-window" title="best-matching semantic window" '
           'style="background-color: rgba(66, 133, 244, 0.14);">{text}</span>')
STAGE_NAMES = {"exact": "exact n-grams", "near_duplicate": "near-duplicate", "semantic": "semantic",
               "judged": "judged", "clean": "clean"}


def _segments(start: int, end: int, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """``[start, end)`` cut into consecutive pieces, each flagged: inside one of ``ranges`` (sorted, disjoint)?"""
    out, last = [], start
    for a, b in ranges:
        a, b = max(a, last), min(b, end)
        if a >= b:
            continue
        if last < a:
            out.append((last, a, False))
        out.append((a, b, True))
        last = b
    if last < end:
        out.append((last, end, False))
    return out


def highlight_html(text: str, ranges: Sequence[tuple[int, int]], windows: Sequence[tuple[int, int]] = (),
                   kind: str = "exact") -> str:
    """``text`` HTML-escaped, each character range (sorted, disjoint) wrapped in ``<mark>``.

    ``windows`` (sorted, disjoint) shade the unmarked text they cover; a mark is
    never split by a window edge. ``kind`` (``exact`` or ``aligned``) picks the
    mark's class and colour.
    """
    colour = MARK_COLOURS.get(kind, MARK_COLOURS["exact"])
    parts = []
    for start, end, marked in _segments(0, len(text), sorted(ranges)):
        if marked:
            parts.append(_MARK.format(kind=html.escape(kind), colour=colour, text=html.escape(text[start:end])))
            continue
        for a, b, shaded in _segments(start, end, sorted(windows)):
            piece = html.escape(text[a:b])
            parts.append(_WINDOW.format(text=piece) if shaded else piece)
    return _BLOCK.format(body="".join(parts))


def text_block(label: str, text: str, ranges: Sequence[tuple[int, int]], windows: Sequence[tuple[int, int]] = (),
               kind: str = "exact") -> None:
    st.caption(label)
    if text:
        st.html(highlight_html(text, ranges, windows, kind))
    else:
        st.caption("(empty)")


def stage_name(stage: str) -> str:
    """A stage's name for a page, as Markdown."""
    return md(STAGE_NAMES.get(stage, stage))


def record_label(record: EvidenceRecord) -> str:
    """One line of Markdown per record: rank, id, which stage flagged (or only found) it, and its scores."""
    how = (f"flagged by {stage_name(record.method)}" if record.flagged else
           f"candidate from {stage_name(record.method)}, not counted" if record.tier else
           f"found by {stage_name(record.method)}, not flagged")
    scores = [f"coverage {percent(record.coverage)}" if record.coverage is not None else None,
              f"Jaccard {score(record.jaccard)}" if record.jaccard is not None else None,
              f"cosine {score(record.cosine)}" if record.cosine is not None else None,
              f"judge {score(record.judge_score)}" if record.judge_score is not None else None]
    tier = [record.tier] if record.flagged and record.tier else []
    return " · ".join([f"#{record.rank}", md(record.record_id), how, *(s for s in scores if s), *tier])


def _scores(record: EvidenceRecord) -> None:
    cols = st.columns(5)
    cols[0].metric("Coverage", percent(record.coverage), help="share of the item's tokens in matched n-grams")
    cols[1].metric("Longest span", "—" if record.longest_span is None else f"{record.longest_span} tokens")
    cols[2].metric("Jaccard", score(record.jaccard),
                   help="near-duplicate: Jaccard of word 5-gram shingles"
                   + (f" with the item's {md(record.near_field)}" if record.near_field else "")
                   + f"; numbers masked: {score(record.masked_jaccard)}")
    cols[3].metric("Cosine", score(record.cosine), help="semantic: cosine of the best pair of embedding windows")
    cols[4].metric("Judge score", score(record.judge_score), help="judged: P(same problem) from the judge model")
    badges = [f"{record.tier} ({'counted' if record.flagged else 'not counted'}) by {stage_name(record.method)}"
              if record.tier else f"found by {stage_name(record.method)} (below every threshold)"]
    if record.masked_jaccard is not None:
        badges.append(f"masked Jaccard {score(record.masked_jaccard)}")
    with st.container(horizontal=True):
        st.badge(for_badge(badges[0]), color="red" if record.flagged else "gray")
        if record.number_substituted:
            st.badge("number-substituted", color="orange",
                     help="the same text with other numbers: Jaccard with numbers masked reached the threshold")
        for text in badges[1:]:
            st.badge(text, color="blue")
        if record.leaked:
            st.badge(for_badge(f"leaked: {record.leaked}"), color="violet")
    if record.reason:
        verdict = {True: "check passed", False: "check failed"}.get(record.check_passed, "")
        st.markdown(f"**Why:** {md(record.reason)}" + (f" ({md(record.check)}: {verdict})" if verdict else ""))
    if record.record_best is not None and record.cosine is not None:
        st.caption(f"mutual-best rule: this pair's cosine {score(record.cosine)}, the record's best with any item "
                   f"{score(record.record_best)}")


def _legend(record: EvidenceRecord) -> str:
    parts = {"exact": "marked: n-grams both texts contain (exact stage)",
             "aligned": "no n-gram matched; marked: runs of words both texts share, in order",
             "": "nothing marked"}
    legend = parts.get(record.highlight, "")
    if record.window is not None or record.item_prompt_window or record.item_answer_window:
        legend += " · shaded: the best-matching semantic windows"
    return legend


def item_evidence(evidence: ItemEvidence) -> None:
    """The item's verdict and scores, then one expander per matching record with item and record side by side."""
    v = evidence.verdict
    tier = v.get("tier") or ("clean" if v["verdict"] == "clean" else "")
    st.markdown(f"**{md(evidence.item_id)}** in {md(evidence.target.benchmark_label)}: **{md(tier.upper())}**"
                f"{', decided by ' + stage_name(v['verdict']) if v['verdict'] != 'clean' else ''}"
                f" (n-gram bucket {md(v['bucket'])}), against {md(evidence.target.synthetic_label)}")
    if v.get("reason"):
        st.caption(f"{md(v['reason'])}" + (f" · leaked: {md(v['leaked'])}" if v.get("leaked") else ""))
    cols = st.columns(6)
    cols[0].metric("Coverage", percent(v["coverage"]), help=f"prompt {percent(v['prompt_coverage'])}, "
                   f"answer {percent(v['answer_coverage'])}; longest span {v['longest_span']} tokens")
    cols[1].metric("Jaccard", score(v["jaccard"]), help=f"numbers masked: {score(v['masked_jaccard'])}")
    cols[2].metric("Cosine", score(v["cosine"]))
    cols[3].metric("Judge score", score(v["judge_score"]))
    cols[4].metric("Matching records", int(v["matched_records"] or 0), help="records sharing an n-gram")
    cols[5].metric("Stages run", len((v.get("stages") or "").split(",")), help=md(v.get("stages") or ""))
    if v.get("number_substituted"):
        st.badge("number-substituted", color="orange")
    if not evidence.records:
        st.info("No synthetic record matches this item at any stage.")
        return
    for record in evidence.records:
        with st.expander(record_label(record), expanded=record.rank == 1):
            _scores(record)
            st.caption(_legend(record))
            left, right = st.columns(2)
            with left:
                st.markdown(f"**Benchmark item** {md(evidence.item_id)}")
                coverage = (f" — {percent(record.prompt_coverage)} matched by this record"
                            if record.highlight == "exact" and record.prompt_coverage is not None else "")
                text_block(f"prompt{coverage}", evidence.prompt, record.item_prompt_ranges,
                           record.item_prompt_window, record.highlight)
                coverage = (f" — {percent(record.answer_coverage)} matched by this record"
                            if record.highlight == "exact" and record.answer_coverage is not None else "")
                text_block(f"answer{coverage}", evidence.answer, record.item_answer_ranges,
                           record.item_answer_window, record.highlight)
            with right:
                st.markdown(f"**Synthetic record** {md(record.record_id)} ({md(evidence.target.synthetic_label)})")
                if record.text is None:
                    st.warning("This record is no longer in the dataset version the scan read.")
                else:
                    text_block("prompt and answer", record.text, record.ranges,
                               [record.window] if record.window else [], record.highlight)
