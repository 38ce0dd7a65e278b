"""synthscope's Streamlit dashboard: ``app.py`` is the entry point (``synthscope serve``)."""
