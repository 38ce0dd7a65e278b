"""The dashboard's pages: each a script Streamlit runs (see ../app.py); a package so the wheel carries them."""
