"""Drawing a baseline-vs-candidate comparison: score per subset, the ConTAM curve, and one item's answers.

The data comes from :mod:`synthscope.evals.compare_results`; these only draw.
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd
import streamlit as st

from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import is_missing, percent, score
from synthscope.evals.compare_results import ItemDetail, RunAnswer, choices_table

RUN_COLOURS = ("#90a4ae", "#e65100")  # baseline grey, candidate orange
CURVE_COLOURS = {"candidate": "#e65100", "baseline": "#90a4ae", "attributed to contamination": "#c62828"}


def points(value: float | None) -> str:
    """A gain in percentage points: ``+87.5 pp``; missing as ``—``."""
    return "—" if is_missing(value) else f"{value * 100:+.1f} pp"


def subset_chart(long: pd.DataFrame, baseline: str, candidate: str, height: int = 280) -> alt.Chart:
    """Grouped bars: each run's score per subset (``subset, order, run, score, n``), subsets in table order."""
    order = list(dict.fromkeys(long.sort_values("order")["subset"]))
    return alt.Chart(long.dropna(subset=["score"])).mark_bar().encode(
        x=alt.X("subset:N", sort=order, title=None,
                axis=alt.Axis(labelAngle=-30, labelLimit=160, labelOverlap=False)),
        xOffset=alt.XOffset("run:N", sort=[baseline, candidate]),
        y=alt.Y("score:Q", title="score", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("run:N", title="run", sort=[baseline, candidate],
                        scale=alt.Scale(domain=[baseline, candidate], range=list(RUN_COLOURS))),
        tooltip=["subset:N", "run:N", alt.Tooltip("score:Q", format=".1%"), alt.Tooltip("n:Q", title="items")],
    ).properties(height=height)


def contam_chart(long: pd.DataFrame, score_name: str, height: int = 280) -> alt.Chart:
    """The ConTAM curve: estimated gains against the contamination threshold (``threshold, series, gain, ...``).

    Each estimate is drawn flat over the interval of thresholds it holds for, so the lines are steps.
    """
    low = min(0.0, float(long["threshold"].min())) if not long.empty else 0.0
    return alt.Chart(long).mark_line(strokeWidth=2).encode(
        x=alt.X("threshold:Q", title=f"contaminated when {score_name} ≥ threshold",
                scale=alt.Scale(domain=[low, 1.0], clamp=True)),
        y=alt.Y("gain:Q", title="estimated gain (EPG)", axis=alt.Axis(format="+%")),
        order=alt.Order("threshold:Q"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=list(CURVE_COLOURS),
                                                              range=list(CURVE_COLOURS.values())),
                        legend=alt.Legend(orient="top", direction="horizontal", labelLimit=240)),
        tooltip=["series:N", alt.Tooltip("threshold:Q", format=".3f"), alt.Tooltip("gain:Q", format="+.1%"),
                 alt.Tooltip("n_contaminated:Q", title="contaminated items"),
                 alt.Tooltip("share_contaminated:Q", format=".0%", title="contaminated share")],
    ).properties(height=height)


def membership_chart(points: pd.DataFrame, baseline: str, candidate: str, height: int = 300) -> alt.Chart:
    """Each item at (Min-K%++ under the baseline, under the candidate), coloured by the scan's verdict.

    Items the candidate saw rise above the diagonal: the reference model places them where an unseen text sits.
    """
    low = float(min(points["mink_baseline"].min(), points["mink_candidate"].min()))
    high = float(max(points["mink_baseline"].max(), points["mink_candidate"].max()))
    diagonal = alt.Chart(pd.DataFrame({"x": [low, high], "y": [low, high]})).mark_line(
        color="#9e9e9e", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    dots = alt.Chart(points).mark_circle(size=45, opacity=0.75).encode(
        x=alt.X("mink_baseline:Q", title=f"Min-K%++ under {baseline}", scale=alt.Scale(zero=False)),
        y=alt.Y("mink_candidate:Q", title=f"Min-K%++ under {candidate}", scale=alt.Scale(zero=False)),
        color=alt.Color("scan:N", title="scan verdict", scale=alt.Scale(domain=["contaminated", "clean"],
                                                                         range=["#c62828", "#90a4ae"])),
        tooltip=["doc_id:Q", "record_id:N", "scan:N", alt.Tooltip("mink_baseline:Q", format=".2f"),
                 alt.Tooltip("mink_candidate:Q", format=".2f")],
    )
    return (diagonal + dots).properties(height=height)


_CELL = "padding: 0.25rem 0.6rem; border-bottom: 1px solid rgba(128, 128, 128, 0.25); text-align: {align};"


def choices_html(table: pd.DataFrame, baseline: str, candidate: str) -> str:
    """The choices as an HTML table (escaped): both runs' log-likelihoods, each run's pick, the target."""
    head = ["", "choice", f"{baseline} log-likelihood", f"{candidate} log-likelihood", "picked by", "target"]
    rows = []
    for r in table.itertuples(index=False):
        picked = [name for name, chose in ((baseline, r.baseline_chose), (candidate, r.candidate_chose)) if chose]
        cells = [(r.choice, "left"), (r.text, "left"), (score(r.baseline_loglikelihood, 3), "right"),
                 (score(r.candidate_loglikelihood, 3), "right"), (", ".join(picked), "left"),
                 ("✓ target" if r.target else "", "left")]
        weight = "font-weight: 600;" if r.target else ""
        rows.append(f'<tr class="{"synthscope-target" if r.target else ""}" style="{weight}">' + "".join(
            f'<td style="{_CELL.format(align=align)}">{html.escape(str(text))}</td>' for text, align in cells)
            + "</tr>")
    header = "".join(f'<th style="{_CELL.format(align="left")}">{html.escape(h)}</th>' for h in head)
    return ('<table class="synthscope-choices" style="border-collapse: collapse; font-size: 0.9rem;">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _verdict(answer: RunAnswer | None) -> str:
    if answer is None:
        return "not evaluated on this item"
    if answer.score is None:
        return "no score"
    return f"{'right' if answer.score >= 0.5 else 'wrong'} (score {score(answer.score)})"


def _text(text: str | None) -> None:
    if text:
        st.html('<pre class="synthscope-answer" style="white-space: pre-wrap; word-break: break-word; margin: 0; '
                'padding: 0.5rem 0.7rem; border-radius: 0.4rem; background: rgba(128, 128, 128, 0.08); '
                f'font-size: 0.85rem;">{html.escape(text)}</pre>')
    else:
        st.caption("(empty)")


def item_answers(detail: ItemDetail) -> None:
    """The benchmark item, then each run's answer: the choices table (multiple choice) or generated vs target."""
    c = detail.contamination
    state = (f"contaminated — decided by {md(c['verdict'])}, n-gram bucket {md(c['bucket'])}, coverage "
             f"{percent(c['coverage'])}, cosine {score(c['cosine'])}" if c["contaminated"]
             else f"clean — coverage {percent(c['coverage'])}, cosine {score(c['cosine'])}")
    st.markdown(f"**doc {md(detail.doc_id)}** of {md(detail.task)} · record {md(detail.record_id)} of "
                f"{md(detail.benchmark)} · {state}")
    base, cand = detail.baseline, detail.candidate
    base_name = base.run_id if base else "baseline"
    cand_name = cand.run_id if cand else "candidate"
    cols = st.columns(2)
    cols[0].metric(f"Baseline ({md(base_name)})", _verdict(base))
    cols[1].metric(f"Candidate ({md(cand_name)})", _verdict(cand))
    st.caption("Benchmark item")
    _text(detail.prompt)
    if detail.multiple_choice:
        st.caption("Choices: each run picks the one with the highest log-likelihood")
        st.html(choices_html(choices_table(detail), base_name, cand_name))
        return
    target = next((a.target for a in (base, cand) if a is not None and a.target), None) or detail.answer
    left, middle, right = st.columns(3)
    with left:
        st.caption("Target")
        _text(target)
    with middle:
        st.caption(f"{md(base_name)} generated")
        _text(base.generated if base else None)
    with right:
        st.caption(f"{md(cand_name)} generated")
        _text(cand.generated if cand else None)
