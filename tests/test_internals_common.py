"""Shared by the ``test_internals*`` modules (pytest picks fixtures up from module globals).

Torch runs single-threaded in these tests: on 2 cores shared with other jobs two threads spin against
each other, and the tensors here are small anyway.
"""

from __future__ import annotations

import pytest
import torch

__all__ = ["single_thread"]


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
