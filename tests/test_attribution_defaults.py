"""Attribution defaults scale with the model: the projection fits the memory limit by default."""

from __future__ import annotations

import dataclasses

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


def test_the_harder_validation_presets_change_one_thing_each_from_micro():
    """What docs/attribution.md says of them: m3 is the micro suite's m3 shape on micro's corpus and schedule;
    epochs is micro's model and schedule on a quarter-sized corpus."""
    from empiricist.attribution.validate import VALIDATION_PRESETS
    from empiricist.suite.config import get_preset

    micro, m3, epochs = (VALIDATION_PRESETS[k] for k in ("micro", "m3", "epochs"))
    suite_m3 = next(s for s in get_preset("micro").sizes if s.name == "m3")
    assert (m3.size.d_model, m3.size.n_layers, m3.size.n_heads) == (suite_m3.d_model, suite_m3.n_layers,
                                                                      suite_m3.n_heads)
    assert m3.train == micro.train and m3.n_random_docs == micro.n_random_docs and m3.methods == micro.methods
    assert epochs.size == micro.size and epochs.train == micro.train and epochs.methods == micro.methods
    n_docs = epochs.n_facts * epochs.docs_per_fact + epochs.n_random_docs
    assert n_docs * 4 <= micro.n_facts * micro.docs_per_fact + micro.n_random_docs
    smooth = VALIDATION_PRESETS["smooth"]  # the amendment: only the learning rate differs in the recipe
    assert smooth.size == micro.size and smooth.train.lr == micro.train.lr / 3
    assert dataclasses.replace(smooth.train, lr=micro.train.lr) == micro.train
