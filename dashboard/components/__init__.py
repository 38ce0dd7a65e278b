"""Widgets shared by the dashboard pages; they draw, and ask :mod:`analysis` for everything else."""
