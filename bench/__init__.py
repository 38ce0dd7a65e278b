"""Benchmarks of synthscope's hot paths; ``python -m bench.ngram_bench`` (``make bench``) for the exact n-gram scan."""
