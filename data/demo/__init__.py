"""The demo's inputs: hand-written rephrasings and look-alikes of benchmark items (read by synthscope.demo.build)."""
