"""The evidence viewer: a benchmark item beside each matching synthetic record, shared spans marked."""

from __future__ import annotations

import html
from collections.abc import Sequence

import streamlit as st

from analysis.contamination.results import EvidenceRecord, ItemEvidence
from dashboard.components.widgets import percent

# Rendered with st.html, not st.markdown: no Markdown, LaTeX or emoji-shortcode pass may touch the text.
_BLOCK = ('<pre class="synthscope-evidence" style="white-space: pre-wrap; word-break: break-word; '
          'max-height: 28rem; overflow: auto; margin: 0; padding: 0.6rem 0.8rem; border-radius: 0.4rem; '
          'background: rgba(128, 128, 128, 0.08); font-size: 0.85rem; line-height: 1.45;">{body}</pre>')
_MARK = '<mark style="background-color: #ffd54f; color: inherit; padding: 0 1px;">{text}</mark>'


def highlight_html(text: str, ranges: Sequence[tuple[int, int]]) -> str:
    """``text`` HTML-escaped, with each character range (sorted, disjoint) wrapped in ``<mark>``."""
    parts, last = [], 0
    for start, end in ranges:
        start, end = max(start, last), min(end, len(text))
        if start >= end:
            continue
        parts.append(html.escape(text[last:start]))
        parts.append(_MARK.format(text=html.escape(text[start:end])))
        last = end
    parts.append(html.escape(text[last:]))
    return _BLOCK.format(body="".join(parts))


def text_block(label: str, text: str, ranges: Sequence[tuple[int, int]]) -> None:
    st.caption(label)
    if text:
        st.html(highlight_html(text, ranges))
    else:
        st.caption("(empty)")


def _record_label(record: EvidenceRecord) -> str:
    return (f"#{record.rank} · {record.record_id} · coverage {percent(record.coverage)} · "
            f"longest span {record.longest_span} tokens · matched {record.matched_field or '-'}")


def item_evidence(evidence: ItemEvidence) -> None:
    """The item's verdict, then one expander per matching record with item and record side by side."""
    v = evidence.verdict
    st.markdown(f"**{evidence.item_id}** in {evidence.target.benchmark_label}: verdict `{v['verdict']}`, "
                f"bucket `{v['bucket']}`, against {evidence.target.synthetic_label}")
    cols = st.columns(5)
    cols[0].metric("Coverage", percent(v["coverage"]))
    cols[1].metric("Prompt coverage", percent(v["prompt_coverage"]))
    cols[2].metric("Answer coverage", percent(v["answer_coverage"]))
    cols[3].metric("Longest span", f"{v['longest_span']} tokens")
    cols[4].metric("Matching records", int(v["matched_records"]))
    if not evidence.records:
        st.info("No synthetic record shares an n-gram with this item.")
        return
    for record in evidence.records:
        with st.expander(_record_label(record), expanded=record.rank == 1):
            left, right = st.columns(2)
            with left:
                st.markdown(f"**Benchmark item** `{evidence.item_id}`")
                text_block(f"prompt — {percent(record.prompt_coverage)} matched by this record",
                           evidence.prompt, record.item_prompt_ranges)
                text_block(f"answer — {percent(record.answer_coverage)} matched by this record",
                           evidence.answer, record.item_answer_ranges)
            with right:
                st.markdown(f"**Synthetic record** `{record.record_id}` ({evidence.target.synthetic_label})")
                if record.text is None:
                    st.warning("This record is no longer in the dataset version the scan read.")
                else:
                    text_block("prompt and answer", record.text, record.ranges)
