"""Engines sum the sufficient statistics over all rows, wherever the rows are.

An engine offers ``n_samples``, ``n_features``, ``dtype``, ``e_step(family, plan)`` (the
family's statistics summed over every row; engines never import a family),
``take(indices)`` (rows for initialisation) and ``blocks()`` (row blocks, in input order, for
writing labels and responsibilities: ``(x, w)`` pairs for the stream and dask engines, ``w``
the frequency weights of the block or None).  Frequency weights: ``MemoryEngine.weights``
(an array), ``weights_column`` (a column name) for engines that read a file.  The rows come
from ``emcli.data`` (the one reader); the EM driver knows nothing else about the data.
"""
