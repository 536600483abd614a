"""specmon benchmark rows: one module per row (NAME, TARGET, run(ctx) -> dict, table(r) -> the
table's what/ours/compared with/ratio, or None), shared helpers in common, the runner in main.
Run it as `python scripts/bench.py`."""
