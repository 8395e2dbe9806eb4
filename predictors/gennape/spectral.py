"""Spectral signatures of computation graphs: the distance GENNAPE's contrastive loss weighs positives by.

GENNAPE (Mills et al. 2023, Eq. 1) compares two computation graphs by the Euclidean distance between the
``q = 21`` smallest eigenvalues of the normalised Laplacian of their underlying undirected graphs (Dwivedi
and Bresson 2021). The spectrum is a fingerprint of connectivity alone: cells stacked the same way have
close spectra whatever their ops, other topologies (an inverted-residual chain, a branchy cell) lie far away.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

Q = 21
DENSE_LIMIT = 2000  # nodes up to which the full dense eigen-decomposition is cheaper than a sparse solver
PAD = 1.0  # the mean eigenvalue of any normalised Laplacian (its trace is n): a graph of < q nodes is padded with it


def laplacian_spectrum(edges: np.ndarray, n_nodes: int, q: int = Q) -> np.ndarray:
    """The ``q`` smallest eigenvalues of ``I - D^-1/2 A D^-1/2`` of the undirected graph, ascending.

    ``edges`` is (2, e) source/target rows (direction and duplicates do not matter); nodes with no edge
    contribute an eigenvalue 0 (they are components of their own).
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    keep = edges[0] != edges[1]
    rows = np.concatenate([edges[0, keep], edges[1, keep]])
    cols = np.concatenate([edges[1, keep], edges[0, keep]])
    adjacency = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes)).tocsr()
    adjacency.data[:] = 1.0  # an edge given twice is one edge
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    scale = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    normalised = scipy.sparse.diags(scale) @ adjacency @ scipy.sparse.diags(scale)
    laplacian = scipy.sparse.diags((degree > 0).astype(np.float64)) - normalised
    k = min(q, n_nodes)
    if n_nodes <= DENSE_LIMIT:
        values = scipy.linalg.eigvalsh(laplacian.toarray(), subset_by_index=[0, k - 1])
    else:
        values = np.sort(scipy.sparse.linalg.eigsh(laplacian, k=k, which="SA", return_eigenvectors=False))
    return np.concatenate([np.clip(values, 0.0, 2.0), np.full(q - k, PAD)])


def spectra(graphs: np.ndarray, q: int = Q) -> np.ndarray:
    """(N, q) spectra of a ``graphs`` view (``(node_features, edges)`` pairs)."""
    return np.stack([laplacian_spectrum(g[1], len(g[0]), q) for g in graphs]) if len(graphs) else np.zeros((0, q))
