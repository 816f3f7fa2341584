"""Attribution: every method on a problem whose answer is known, the API's contracts, and bad input.

The known problem: one document (a phrase found nowhere else) is copied 12 times into 100 random
documents, and a small model is trained on them. The query is that phrase's prompt and continuation,
which only those copies explain, so every method must rank a copy first.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import synthetic_texts

from empiricist.attribution import METHODS, Documents, Query, attribute, load_queries
from empiricist.attribution.data import combine_rows, query_rows
from empiricist.attribution.retrain import record_run, train_on_docs
from empiricist.errors import EmpiricistError, InputError
from empiricist.suite.config import ModelSize, TrainConfig

PLANTED = "the zebra quartz mosaic hums below xylophone jungles."
COPIES = 12
QUERY = Query("the zebra quartz mosaic hums", " below xylophone jungles", None, "planted")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    """(model folder, documents, planted rows): a tiny GPT-NeoX trained on the corpus, saved as HF."""
    from empiricist.data.tokenizer import save_hf_tokenizer, train_bpe

    root = tmp_path_factory.mktemp("attr")
    texts = synthetic_texts(100, seed=3)
    rows = list(range(7, 7 + COPIES * 7, 7))  # copies spread through the corpus
    for r in rows:
        texts.insert(r, PLANTED)
    tok_path = train_bpe(texts, 320, root / "tok")
    folder = root / "model"
    folder.mkdir()
    save_hf_tokenizer(tok_path, folder)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    docs = Documents.from_texts(texts, tok, [f"d{i}" for i in range(len(texts))])
    cfg = TrainConfig(seq_len=64, batch_size=8, steps=60, lr=1e-2, warmup_steps=5, threads=1, precision="fp32")
    model = train_on_docs(docs.tokens, ModelSize("a", 32, 2, 2), cfg, len(tok), seed=0)
    model.save_pretrained(folder, safe_serialization=True)
    record_run(folder, docs.tokens, ModelSize("a", 32, 2, 2), cfg, len(tok), 0)  # magic replays it
    planted_rows = [i for i, t in enumerate(texts) if t == PLANTED]
    assert len(planted_rows) == COPIES
    return folder, docs, set(planted_rows)


@pytest.fixture(scope="module")
def handle(planted):
    from empiricist.suite.handles import load_model

    return load_model(str(planted[0]))  # a locally saved HF model, as a user would give one


# magic is the exact first-order effect of each document's weight on this one run (60 steps of Adam at
# lr 1e-2, far from metasmooth): copies differ by where in the order they fell, and 8 of 12 rank in its
# top 12 (the top one is a copy) — a property of the run, not a similarity ranking
MIN_COPIES = {"magic": 7}
SMALL = {"trak": {"proj_dim": 48}, "tracin": {"proj_dim": 256}, "trackstar": {"proj_dim": 256, "fisher_rows": 64}}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_ranks_the_explaining_document_first(method, planted, handle, tmp_path):
    _, docs, rows = planted
    res = attribute(handle, [QUERY], docs, method, cache=tmp_path, options=SMALL.get(method), progress=False)
    assert res.scores.shape == (1, len(docs))
    assert np.isfinite(res.scores).all()
    top = [i for i, _ in res.top(0, COPIES)]
    assert top[0] in rows, f"{method}: top document {docs.texts[top[0]]!r}"
    assert len(set(top) & rows) >= MIN_COPIES.get(method, COPIES - 2), \
        f"{method}: only {len(set(top) & rows)} copies in the top {COPIES}"


def test_contrast_is_the_difference_of_the_two_continuations(planted, handle, tmp_path):
    _, docs, _ = planted
    a = Query(QUERY.prompt, QUERY.target)
    b = Query(QUERY.prompt, " river paris")
    both = attribute(handle, [Query(QUERY.prompt, QUERY.target, " river paris")], docs, "tracin", cache=tmp_path,
                     options=SMALL["tracin"], progress=False).scores[0]
    sa, sb = attribute(handle, [a, b], docs, "tracin", cache=tmp_path, options=SMALL["tracin"], progress=False).scores
    np.testing.assert_allclose(both, sa - sb, rtol=1e-6, atol=1e-9)


def test_second_query_set_reuses_document_features(planted, handle, tmp_path):
    _, docs, _ = planted
    attribute(handle, [QUERY], docs, "trackstar", cache=tmp_path, options=SMALL["trackstar"], progress=False)
    first = set((tmp_path / "features").iterdir())
    attribute(handle, [Query("alpha beta", " gamma")], docs, "trackstar", cache=tmp_path,
              options=SMALL["trackstar"], progress=False)
    new = set((tmp_path / "features").iterdir()) - first
    assert len(new) == 1  # only the new query's features; documents and second moment came from the cache


def test_combine_rows_signs_and_owners():
    rows = query_rows([Query("a", " b"), Query("a", " b", " c")], _WordTok(), 16)
    assert rows.owner.tolist() == [0, 1, 1] and rows.sign.tolist() == [1.0, 1.0, -1.0]
    out = combine_rows(np.array([[1.0, 2.0], [3.0, 4.0], [0.5, 1.0]]), rows, 2)
    np.testing.assert_allclose(out, [[1.0, 2.0], [2.5, 3.0]])
    assert rows.masks[0].tolist() == [0.0, 1.0]  # only the continuation is measured


class _WordTok:
    """A whitespace tokenizer, enough for row building."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [hash(w) % 50 + 1 for w in text.split()]}


def test_bad_input_gets_clear_errors(planted, handle, tmp_path):
    _, docs, _ = planted
    with pytest.raises(EmpiricistError, match="unknown attribution method"):
        attribute(handle, [QUERY], docs, "influence-magic")
    with pytest.raises(EmpiricistError, match="no option"):
        attribute(handle, [QUERY], docs, "tracin", options={"proj_dimm": 3})
    with pytest.raises(InputError, match="over the model's context"):
        attribute(handle, [Query("alpha " * 200, " beta")], docs, "tracin", progress=False)
    with pytest.raises(InputError, match="no documents"):
        attribute(handle, [QUERY], Documents([], [], []), "bm25")
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"prompt": "a", "target": " b"}\n{"prompt": "a"}\n')
    with pytest.raises(InputError, match=r"q\.jsonl.*line 2.*target"):
        load_queries(bad)


def test_cli_attribute_json_on_a_local_model(planted, tmp_path):
    from typer.testing import CliRunner

    from empiricist.cli import app

    folder, docs, rows = planted
    texts = tmp_path / "docs.jsonl"
    texts.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(docs.ids, docs.texts, strict=True)))
    r = CliRunner().invoke(app, ["attribute", "--model", str(folder), "--docs", str(texts), "--prompt", QUERY.prompt,
                                 "--target", QUERY.target, "--method", "bm25", "--json", "--top", "3",
                                 "-w", str(tmp_path / "ws"), "-q"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    top = out["queries"][0]["top"]
    assert len(top) == 3 and top[0]["doc_id"] in {docs.ids[i] for i in rows} and "zebra" in top[0]["text"]


def test_spearman_lds_sign_convention():
    from empiricist.attribution.validate import spearman_lds

    rng = np.random.default_rng(0)
    nll = rng.normal(size=(20, 3))
    assert np.allclose(spearman_lds(-nll, nll), 1.0)  # predicted goodness = −NLL: perfect
    assert np.allclose(spearman_lds(nll, nll), -1.0)
    assert np.isnan(spearman_lds(np.ones((20, 3)), nll)).all()  # constant prediction: undefined, not 0


@pytest.fixture(scope="module")
def tiny_world_store(tmp_path_factory: pytest.TempPathFactory):
    from empiricist.data import build_store, train_bpe
    from empiricist.data.readers import iter_documents
    from empiricist.data.store import TokenStore
    from empiricist.world import World, WorldConfig, generate_world

    root = tmp_path_factory.mktemp("vw")
    world = World.open(generate_world(WorldConfig.preset("tiny"), out_dir=root / "world", progress=False))
    tok = train_bpe((d.text for d in iter_documents(world.path)), 1000, root / "tok")
    return world, TokenStore.open(build_store(iter_documents(world.path), tok, root / "store", progress=False))


@pytest.mark.slow
def test_validation_runs_resumes_and_reports_every_method(tiny_world_store, tmp_path):
    from empiricist.attribution.validate import VALIDATION_PRESETS, validate

    world, store = tiny_world_store
    cfg = VALIDATION_PRESETS["tiny"]
    res = validate(world, store, cfg, tmp_path / "v", progress=False)
    assert [r["method"] for r in res["rows"]] == list(cfg.methods)
    for r in res["rows"]:
        for kind in ("fact", "text"):
            k = f"lds_{kind}"
            assert -1 <= r[k] <= 1 and r[k + "_lo"] <= r[k] <= r[k + "_hi"] and r[k + "_n"] >= 2, r
        assert 0 <= r["recall@10"] <= 1 and 0 <= r["mrr"] <= 1
        assert r["seconds"] >= 0 and r["peak_rss_mb"] > 0
    runs = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v" / "runs").iterdir()}
    assert len(runs) == 1 + cfg.n_subsets * len(cfg.seeds) + cfg.cf_groups * (len(cfg.methods) + 1)
    again = validate(world, store, cfg, tmp_path / "v", progress=False)  # resumes: nothing retrained
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v" / "runs").iterdir()} == runs
    assert [r["lds_fact"] for r in again["rows"]] == [r["lds_fact"] for r in res["rows"]]
    assert res["n_text_queries"] == cfg.n_text_queries and res["n_fact_queries"] == cfg.n_facts
    assert json.loads((tmp_path / "v" / "results.json").read_text())["rows"] == again["rows"]


def test_cli_table_prints_document_text_literally(planted, tmp_path):
    """Document text is data: rich markup in it is printed, not interpreted."""
    from typer.testing import CliRunner

    from empiricist.cli import app

    folder, _, _ = planted
    texts = tmp_path / "docs.jsonl"
    texts.write_text(json.dumps({"id": "m", "text": "the zebra [bold red]quartz[/] mosaic"}) + "\n"
                     + json.dumps({"id": "n", "text": "alpha beta"}) + "\n")
    r = CliRunner().invoke(app, ["attribute", "--model", str(folder), "--docs", str(texts), "--prompt", "the zebra",
                                 "--target", " quartz", "--method", "bm25", "--top", "1", "-w", str(tmp_path / "w"), "-q"])
    assert r.exit_code == 0, r.output
    flat = r.output.replace("\n", "").replace("│", "").replace(" ", "")  # the table may wrap the cell
    assert "[boldred]quartz[/]" in flat
