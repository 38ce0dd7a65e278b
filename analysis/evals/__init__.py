"""Evaluation-side contamination analysis: how much a benchmark score is inflated by leaked items."""
