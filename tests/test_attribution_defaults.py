"""Attribution defaults scale with the model: the projection fits the memory limit by default."""

from __future__ import annotations

import pytest

from empiricist.errors import EmpiricistError


def test_auto_projection_width_fits_big_vocabularies_and_keeps_explicit_choices():
    from empiricist.attribution.grads import AUTO_PROJ_DIM, MAX_PROJECTION_BYTES, fit_proj_dim, make_projector
    from empiricist.attribution.methods import DEFAULTS

    assert all(DEFAULTS[m]["proj_dim"] == "auto" for m in ("tracin", "trackstar", "trak"))
    assert fit_proj_dim("auto", 600_000) == AUTO_PROJ_DIM  # the micro models: unchanged
    gpt_neox_head = 50_304 * 64 + 4 * 64 * 64 * 12  # a 50k-vocabulary model: the untied head dominates
    dim = fit_proj_dim("auto", gpt_neox_head)
    assert 16 <= dim < AUTO_PROJ_DIM and gpt_neox_head * dim * 4 <= MAX_PROJECTION_BYTES // 2
    assert gpt_neox_head * dim * 2 * 4 > MAX_PROJECTION_BYTES // 2  # the largest power of two that fits
    assert fit_proj_dim(4096, gpt_neox_head) == 4096  # explicit: the user's choice, refused only if too big
    with pytest.raises(EmpiricistError, match="'auto', the default, fits it"):
        make_projector(50_000_000, 4096, 0)
