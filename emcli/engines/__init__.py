"""Engines sum the sufficient statistics over all rows, wherever the rows are.

An engine offers ``n_samples``, ``n_features``, ``e_step(params) -> SufficientStats``,
``take(indices)`` (rows for initialisation) and ``blocks()`` (row blocks, in input order, for
writing labels and responsibilities).  The EM driver knows nothing else about the data.
"""
