"""Fixtures of the trace tests that use a tiny untrained 4x4 model: the model (shaped by the test module's
own ``TASK``, ``T``, ``n`` and ``N``), a batch of random puzzles, and the plain run_with_cache of it."""
import pytest

from trmlab.trace import run_with_cache
from trmlab.trace.tiny import random_batch, tiny_model


@pytest.fixture(scope="module")
def model(request):
    m = request.module
    return tiny_model(m.TASK, hidden=32, n_recursions=m.T, n_latent_steps=m.n, n_supervision=m.N)


@pytest.fixture(scope="module")
def batch(request):
    return random_batch(request.module.TASK, batch_size=3, seed=1)


@pytest.fixture(scope="module")
def plain(model, batch):
    return run_with_cache(model, batch)
