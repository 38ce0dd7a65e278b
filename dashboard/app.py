"""synthscope dashboard: ``streamlit run dashboard/app.py`` with ``$SYNTHSCOPE_WORKSPACE`` set (``synthscope serve``).

The pages live in ``app_pages/``; the sidebar shows the workspace and its running jobs. When sign-in is
configured (``[auth]`` in Streamlit's secrets), nothing below the gate runs for a visitor not let in.
"""

from __future__ import annotations

import streamlit as st

from synthscope.dashboard.components.demo_status import demo_banner
from synthscope.dashboard.components.jobs import running_jobs
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.signin import require_sign_in
from synthscope.dashboard.components.workspace import open_workspace

st.set_page_config(page_title="synthscope", layout="wide")
require_sign_in()  # before any page or the sidebar's workspace: a visitor not let in stops here

navigation = st.navigation([
    st.Page("app_pages/overview.py", title="Overview", default=True),
    st.Page("app_pages/datasets.py", title="Datasets"),
    st.Page("app_pages/contamination.py", title="Contamination"),
    st.Page("app_pages/calibration.py", title="Calibration"),
    st.Page("app_pages/quality.py", title="Quality & Bias"),
    st.Page("app_pages/privacy.py", title="Privacy"),
    st.Page("app_pages/trends.py", title="Trends"),
    st.Page("app_pages/generate.py", title="Generate"),
    st.Page("app_pages/runs.py", title="Runs"),
    st.Page("app_pages/compare.py", title="Compare"),
])

ws, error = open_workspace()
with st.sidebar:
    if ws is None:
        st.error("No workspace")
    else:
        st.caption("Workspace (read-only: on object storage)" if ws.read_only else "Workspace")
        st.caption(md(ws.root))
        running_jobs(ws)

if ws is None:
    st.title("synthscope")
    st.error(error)
    st.stop()

demo_banner(ws)  # while the demo's second half builds: what is ready, what is coming
navigation.run()
