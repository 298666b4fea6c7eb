from __future__ import annotations

import pytest
import torch

from .systems import model_minimum, predictor


@pytest.fixture(scope="package")
def pred():
    """The float64 conservative test model as a predictor."""
    return predictor()


@pytest.fixture(scope="package")
def minimum(pred):
    """A minimum of the test model (ase FIRE, 5e-3 eV/Å)."""
    return model_minimum(pred)


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """One torch thread: these small graphs run slower with two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
