"""The data layer: one reader, one set of data checks, the atomic writers.

- ``reader``: ``read_table`` (every row), ``open_blocks`` (row blocks in input order).
- ``parts``: an input cut into parts (CSV byte ranges, Parquet row groups) for the dask
  engine's workers.
- ``formats``: what the readers share (formats, delimiters, column choice, conversion).
- ``checks``: ``ColumnSummary``, a per-block summary that adds up, and the checks on it.
- ``writers``: ``OutputSet`` and friends (an output is complete or untouched).
"""
