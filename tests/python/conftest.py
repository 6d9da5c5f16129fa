"""Shared by the binding's tests: run with PYTHONPATH=<build>/python
(ctest python_binding sets it, and LINALIGN_CLI to the C++ command-line
tool the bit-for-bit tests compare with)."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def rng():
    return np.random.default_rng(20261201)


def logits(rng, B, V, dtype=np.float32, scale=3.0):
    z = (rng.standard_normal((B, V)) * scale).astype(dtype)
    y = (z + rng.standard_normal((B, V))).astype(dtype)
    return z, y


sys.path.insert(0, HERE)
