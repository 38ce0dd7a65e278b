"""Algorithms more than one concern uses: MinHash sets and signatures, LSH banding, clustering, ranking."""
