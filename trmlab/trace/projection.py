"""PCA for traces: fitted on the states a trace saw, to draw y and z as paths in a plane.

The fit accumulates the mean and the covariance (float64) one block of vectors at a time, so it
never needs all states in memory at once; the components are the covariance's top eigenvectors,
signed so that the largest loading of each is positive (the same trace always gives the same plane).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PCA:
    mean: np.ndarray  # [D]
    components: np.ndarray  # [k, D]
    explained_variance_ratio: np.ndarray  # [k]

    def transform(self, x) -> np.ndarray:
        """Project [..., D] onto the components: [..., k] (float32)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().to(torch.float64).cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def to_dict(self) -> dict:
        return {"explained_variance_ratio": self.explained_variance_ratio.tolist()}


class CovarianceAccumulator:
    """Running sum and outer-product sum of D-vectors, in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.total = None
        self.outer = None

    def add(self, x) -> None:
        if isinstance(x, torch.Tensor):
            x = x.detach().to(torch.float64).reshape(-1, x.shape[-1])
        else:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, np.shape(x)[-1])
        if self.total is None:
            self.total = torch.zeros(x.shape[1], dtype=torch.float64)
            self.outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        x = x.cpu()
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.outer += x.T @ x

    def fit(self, k: int = 2) -> PCA:
        if not self.count:
            raise ValueError("PCA: no vectors were recorded")
        mean = self.total / self.count
        cov = self.outer / self.count - torch.outer(mean, mean)
        cov = (cov + cov.T) / 2
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(evals, descending=True)[:k]
        comps = evecs[:, order].T.clone()  # [k, D]
        for j in range(comps.shape[0]):
            if comps[j, torch.argmax(comps[j].abs())] < 0:
                comps[j] = -comps[j]
        total_var = float(evals.clamp(min=0).sum())
        ratio = (evals[order].clamp(min=0) / total_var) if total_var > 0 else torch.zeros(len(order))
        comps_np = comps.numpy()
        if comps_np.shape[0] < k:  # fewer dimensions than k: pad with zero axes
            comps_np = np.vstack([comps_np, np.zeros((k - comps_np.shape[0], comps_np.shape[1]))])
            ratio = torch.cat([ratio, torch.zeros(k - len(ratio), dtype=ratio.dtype)])
        return PCA(mean.numpy(), comps_np, ratio.numpy())


def fit_pca(x, k: int = 2) -> PCA:
    """PCA of the rows of x ([N, D] or [..., D])."""
    acc = CovarianceAccumulator()
    acc.add(x)
    return acc.fit(k)
