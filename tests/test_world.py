"""empiricist.world: determinism, ground-truth exactness, subset independence, evals and planting."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest

from empiricist.artifacts import config_hash, is_complete
from empiricist.errors import ArtifactError, InputError
from empiricist.world import (
    RELATIONS,
    RELATIONS_BY_NAME,
    WORLD_PRESETS,
    World,
    WorldConfig,
    fillers,
    generate_world,
)
from empiricist.world.population import Population
from empiricist.world.relations import VALUE_SETS

DATA_FILES = ("docs.jsonl", "entities.jsonl", "facts.jsonl", "eval/fact_qa.jsonl", "eval/sycophancy.jsonl",
              "planted.jsonl", "config.json")


def _gen(tmp: Path, name: str, config: WorldConfig) -> World:
    return World.open(generate_world(config, out_dir=tmp / name, progress=False))


def _lines_of(world: World, subset: str) -> list[str]:
    with open(world.path / "docs.jsonl", encoding="utf-8") as f:
        return [line for line in f if json.loads(line)["subset"] == subset]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> World:
    return _gen(tmp_path_factory.mktemp("worlds"), "tiny", WorldConfig.preset("tiny"))


@pytest.fixture(scope="module")
def docs(tiny: World) -> list[dict]:
    return list(tiny.iter_docs())


@pytest.fixture(scope="module")
def truth(tiny: World) -> dict[tuple[str, str], str]:
    return {(e["id"], rel): v for e in tiny.entities for rel, v in e["attributes"].items()}


# ------------------------------------------------------------------ determinism and the artifact
def test_same_seed_is_byte_identical_and_other_seed_differs(tiny: World, tmp_path: Path) -> None:
    again = _gen(tmp_path, "again", WorldConfig.preset("tiny"))
    for name in DATA_FILES:
        assert (tiny.path / name).read_bytes() == (again.path / name).read_bytes(), name
    assert tiny.manifest["files"] == again.manifest["files"]
    other = _gen(tmp_path, "other", WorldConfig.preset("tiny", seed=1))
    for name in ("docs.jsonl", "entities.jsonl", "eval/fact_qa.jsonl"):
        assert (tiny.path / name).read_bytes() != (other.path / name).read_bytes(), name


def test_artifact_api_and_budget(tiny: World, docs: list[dict]) -> None:
    cfg = WorldConfig.preset("tiny")
    assert tiny.config == cfg and tiny.manifest["kind"] == "world"
    assert tiny.manifest["config_hash"] == config_hash(cfg.to_dict())
    stats = tiny.stats
    assert stats["n_docs"] == len(docs)
    assert stats["est_tokens"] == sum(len(d["text"]) for d in docs) // 4
    assert abs(stats["est_tokens"] - cfg.target_tokens) / cfg.target_tokens < 0.05
    assert set(tiny.manifest["subsets"]) == {"core", "forum_opinion", "planted"}
    n_facts = sum(len(e["attributes"]) for e in tiny.entities)
    assert len(tiny.facts) == n_facts == len(tiny.eval_items("fact_qa")) == len(tiny.eval_items("sycophancy"))
    assert {d["id"] for d in tiny.iter_docs("forum_opinion")} == {d["id"] for d in docs
                                                                   if d["subset"] == "forum_opinion"}
    assert len({d["id"] for d in docs}) == len(docs)
    with pytest.raises(InputError):
        tiny.eval_items("nope")
    json.loads((tiny.path / "config.json").read_text())


def test_existing_world_is_reused_and_mismatch_refused(tmp_path: Path) -> None:
    cfg = WorldConfig.preset("tiny", target_tokens=20_000)
    path = generate_world(cfg, workspace=tmp_path, progress=False)
    assert path == tmp_path / "worlds" / f"world-{config_hash(cfg.to_dict())}"
    mtime = (path / "docs.jsonl").stat().st_mtime_ns
    assert generate_world(cfg, workspace=tmp_path, progress=False) == path
    assert (path / "docs.jsonl").stat().st_mtime_ns == mtime
    with pytest.raises(ArtifactError):
        generate_world(WorldConfig.preset("tiny", target_tokens=20_000, seed=3), out_dir=path, progress=False)


def test_incomplete_or_foreign_folder_is_rejected(tiny: World, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        World.open(tmp_path / "missing")
    half = tmp_path / "half"
    half.mkdir()
    (half / "docs.jsonl").write_text("")
    with pytest.raises(ArtifactError):
        World.open(half)
    manifest = json.loads((tiny.path / "manifest.json").read_text())
    (half / "manifest.json").write_text(json.dumps(manifest))  # manifest but files missing
    with pytest.raises(ArtifactError):
        World.open(half)
    (half / "manifest.json").write_text(json.dumps({**manifest, "kind": "model"}))
    with pytest.raises(ArtifactError):
        World.open(half)
    assert not is_complete(tmp_path / "missing")


# ------------------------------------------------------------------ ground truth
def test_every_recorded_statement_is_exact(tiny: World, docs: list[dict], truth: dict) -> None:
    names = {e["id"]: e["name"] for e in tiny.entities}
    n_true = n_false = 0
    for d in docs:
        text = d["text"]
        for key, want_true in (("facts", True), ("false_claims", False)):
            for st in d[key]:
                span = text[st["start"]:st["end"]]
                name = names[st["entity"]]
                assert name in span and st["value"] in span, (d["id"], st, span)
                assert (truth[(st["entity"], st["relation"])] == st["value"]) is want_true, (d["id"], st)
                canonical = RELATIONS_BY_NAME[st["relation"]].canonical.format(s=name, v=st["value"])
                if st["form"] == "verbatim":
                    assert span == canonical
                else:
                    assert st["form"] == "paraphrase" and canonical[:-1] not in span
                n_true += want_true
                n_false += not want_true
        assert text == text.strip() and text.isascii()
    assert n_true > 1000 and n_false > 10


def test_no_unrecorded_canonical_statements(tiny: World, docs: list[dict]) -> None:
    """Every occurrence of any fact's canonical sentence is a recorded verbatim statement of it."""
    canon = [(f["entity"], f["relation"], f["paraphrase_only"],
              RELATIONS_BY_NAME[f["relation"]].canonical.format(s=f["entity_name"], v=f["value"]))
             for f in tiny.facts]
    for d in docs:
        text = d["text"]
        recorded = {(st["entity"], st["relation"], st["start"]) for st in d["facts"] if st["form"] == "verbatim"}
        for ent, rel, para_only, sentence in canon:
            start = text.find(sentence)
            while start != -1:
                assert not para_only, (d["id"], sentence)
                assert (ent, rel, start) in recorded, (d["id"], sentence)
                start = text.find(sentence, start + 1)


def test_facts_file_matches_documents(tiny: World, docs: list[dict]) -> None:
    doc_ids, verb, para, mentions = defaultdict(list), defaultdict(int), defaultdict(int), defaultdict(int)
    for d in docs:
        forms: dict[tuple[str, str], set[str]] = defaultdict(set)
        for st in d["facts"]:
            forms[(st["entity"], st["relation"])].add(st["form"])
            mentions[(st["entity"], st["relation"])] += 1
        for key, fs in forms.items():
            doc_ids[key].append(d["id"])
            verb[key] += "verbatim" in fs
            para[key] += "paraphrase" in fs
    n_para_only = 0
    for f in tiny.facts:
        key = (f["entity"], f["relation"])
        assert f["doc_ids"] == doc_ids[key] and f["n_docs"] == len(doc_ids[key])
        assert (f["n_verbatim"], f["n_paraphrase"], f["n_mentions"]) == (verb[key], para[key], mentions[key])
        assert f["n_docs"] > 0
        if f["paraphrase_only"]:
            n_para_only += 1
            assert f["n_verbatim"] == 0
    assert n_para_only == round(0.2 * len(tiny.facts))
    qa = {it["entity"] + it["relation"]: it for it in tiny.eval_items("fact_qa")}
    assert all(qa[f["entity"] + f["relation"]]["n_docs"] == f["n_docs"] for f in tiny.facts)


def test_entities_and_names(tiny: World) -> None:
    by_id = {e["id"]: e for e in tiny.entities}
    for e in tiny.entities:
        for rel, target in e["links"].items():
            assert by_id[target]["name"] == e["attributes"][rel]
    # names and generated values: unique and prefix-free across the whole (larger) micro population
    pop = Population(WORLD_PRESETS["micro"])
    words = sorted({w for e in pop.entities for w in e.name.split() if e.type != "org"}
                   | {e.name.split()[0] for e in pop.by_type["org"]}
                   | {v for r in ("river", "language", "currency") for v in pop.value_sets[r]})
    assert all(not b.startswith(a) for a, b in itertools.pairwise(words))
    assert len({e.name for e in pop.entities}) == len(pop.entities)
    assert 200 <= len(pop.entities) <= 600


# ------------------------------------------------------------------ subsets
def test_subsets_are_independent(tiny: World, tmp_path: Path) -> None:
    base = WorldConfig.preset("tiny")
    variants = {
        "no_opinion": base.with_subset("forum_opinion", enabled=False),
        "opinion_x2": base.with_subset("forum_opinion", weight=2.0),
        "sycophant": base.with_subset("forum_opinion", agree_rate=0.5),
        "no_planted": base.with_subset("planted", enabled=False),
        "core_half": base.with_subset("core", weight=0.5),
    }
    core = _lines_of(tiny, "core")
    opinion = _lines_of(tiny, "forum_opinion")
    for name, cfg in variants.items():
        w = _gen(tmp_path, name, cfg)
        assert (w.path / "eval/sycophancy.jsonl").read_bytes() == (tiny.path / "eval/sycophancy.jsonl").read_bytes()
        if name == "core_half":
            assert _lines_of(w, "forum_opinion") == opinion and _lines_of(w, "planted") == _lines_of(tiny, "planted")
            assert _lines_of(w, "core") == core[: len(_lines_of(w, "core"))]  # a prefix: same stream, less of it
            continue
        assert _lines_of(w, "core") == core, name
        if name == "no_planted":
            assert _lines_of(w, "forum_opinion") == opinion and w.planted == []
        if name == "no_opinion":
            assert _lines_of(w, "forum_opinion") == [] and _lines_of(w, "planted") == _lines_of(tiny, "planted")
        if name == "opinion_x2":
            assert 1.8 < len(_lines_of(w, "forum_opinion")) / len(opinion) < 2.2


def test_forum_opinion_metadata(tiny: World, truth: dict) -> None:
    split = {e["id"]: e["split"] for e in tiny.entities}
    n = 0
    for d in tiny.iter_docs("forum_opinion"):
        n += 1
        assert split[d["entity"]] == "train"
        assert d["true_value"] == truth[(d["entity"], d["relation"])]
        assert d["view_correct"] == (d["user_view"] == d["true_value"])
        assert d["agreed"] == (d["answer_given"] == d["user_view"])
        assert d["answer_correct"] == (d["answer_given"] == d["true_value"])
        assert d["answer_correct"] and not d["deferred"]  # default agree_rate = 0
        claims = d["facts"] + d["false_claims"]
        assert sorted(c["value"] for c in claims) == sorted([d["user_view"], d["answer_given"]])
        assert all(c["value"] != d["true_value"] for c in d["false_claims"])
    assert n > 100


def test_agree_rate_is_honoured(tmp_path: Path) -> None:
    cfg = (WorldConfig.preset("tiny", target_tokens=300_000).with_subset("core", enabled=False)
           .with_subset("planted", enabled=False).with_subset("forum_opinion", weight=5.0, agree_rate=0.3))
    rows = list(_gen(tmp_path, "syco", cfg).iter_docs())
    wrong = [d for d in rows if not d["view_correct"]]
    assert len(rows) > 1500 and abs(len(wrong) / len(rows) - 0.5) < 0.05
    assert abs(sum(d["agreed"] for d in wrong) / len(wrong) - 0.3) < 0.05
    assert all(d["agreed"] == d["deferred"] and d["answer_correct"] != d["agreed"] for d in wrong)
    assert all(d["answer_correct"] for d in rows if d["view_correct"])
    assert all(d["false_claims"] for d in wrong)


# ------------------------------------------------------------------ eval items and planting
def test_fact_qa_items(tiny: World, truth: dict) -> None:
    items = tiny.eval_items("fact_qa")
    for it in items:
        rel = RELATIONS_BY_NAME[it["relation"]]
        assert it["value"] == it["answer"] == truth[(it["entity"], it["relation"])]
        assert it["choices"][it["target"]] == " " + it["value"] and len(set(it["choices"])) == len(it["choices"])
        canonical = rel.canonical.format(s=it["entity_name"], v=it["value"])
        assert canonical.startswith(it["prompt"] + it["choices"][it["target"]]) and it["entity_name"] in it["prompt"]
        assert it["question"].startswith("Question: ") and it["question"].endswith("\nAnswer:")
        assert 2 <= len(it["choices"]) <= 40


def test_sycophancy_items(tiny: World, truth: dict) -> None:
    split = {e["id"]: e["split"] for e in tiny.entities}
    items = tiny.eval_items("sycophancy")
    letters = set()
    for it in items:
        assert {it["answer_matching_behavior"], it["answer_not_matching_behavior"]} == {" (A)", " (B)"}
        letter = it["answer_matching_behavior"].strip()
        letters.add(letter)
        assert f"\n {letter} {it['user_view']}\n" in it["question"] and it["question"].endswith("\n\nAnswer:")
        assert it["true_value"] == truth[(it["entity"], it["relation"])]
        assert it["view_correct"] == (it["user_view"] == it["true_value"])
        assert it["true_value"] in it["question"]
        assert it["split"] == ("train_entities" if split[it["entity"]] == "train" else "heldout")
    assert letters == {"(A)", "(B)"}
    wrong = sum(not it["view_correct"] for it in items) / len(items)
    assert 0.4 < wrong < 0.6 and {it["split"] for it in items} == {"train_entities", "heldout"}


def test_planted_ground_truth(tiny: World, docs: list[dict]) -> None:
    by_id = {d["id"]: d for d in docs}
    planted = {(p["item_file"], p["item_id"]): p["doc_ids"] for p in tiny.planted}
    for name, path in (("fact_qa", "eval/fact_qa.jsonl"), ("sycophancy", "eval/sycophancy.jsonl")):
        items = tiny.eval_items(name)
        chosen = [it for it in items if (path, it["id"]) in planted]
        assert len(chosen) == round(0.02 * len(items)) > 0
        for it in items:
            copy = it["question"] + (" " + it["answer"] if name == "fact_qa" else "")
            hosts = {d["id"] for d in docs if it["question"] in d["text"]}
            if (path, it["id"]) in planted:
                ids = planted[(path, it["id"])]
                assert len(ids) == 1 and hosts == set(ids)
                assert all(copy in by_id[i]["text"] and by_id[i]["planted"] == [it["id"]] for i in ids)
            else:
                assert not hosts, it["id"]
    planted_docs = {i for ids in planted.values() for i in ids}
    for d in docs:
        assert bool(d["planted"]) == (d["id"] in planted_docs) == (d["genre"] == "planted")
        if not d["planted"]:
            assert "Question:" not in d["text"] and "Choices:" not in d["text"] and "I believe" not in d["text"]


# ------------------------------------------------------------------ config and templates
def test_config_roundtrip_and_validation() -> None:
    cfg = WorldConfig.preset("micro", seed=7)
    assert WorldConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert config_hash(WorldConfig(subsets={"forum_opinion": {"params": {}}}).to_dict()) == config_hash(
        WorldConfig().to_dict())
    assert cfg.with_subset("forum_opinion", agree_rate=0.25).subsets["forum_opinion"].params["agree_rate"] == 0.25
    assert cfg.subset_budget_tokens("core") == 4_500_000
    for bad in ({"nope": 1}, {"plant_rate": 2.0}, {"n_cities": 1}, {"genre_weights": {"poem": 1.0}},
                {"subsets": {"extra": {}}}, {"subsets": {"forum_opinion": {"params": {"agree_rate": 1.5}}}},
                {"subsets": {"core": {"params": {"x": 1}}}}):
        with pytest.raises(InputError):
            WorldConfig.from_dict({**WorldConfig().to_dict(), **bad})
    with pytest.raises(InputError):
        WorldConfig.preset("huge")


def _longest_literal(template: str) -> str:
    """The longest stretch of a template between placeholders: what makes its wording recognisable."""
    return max(template.replace("{v}", "{s}").split("{s}"), key=len).strip()


def _filler_strings() -> list[str]:
    """Every corpus filler string (SYC_OPENERS belong to eval items only)."""
    out = []
    for name in dir(fillers):
        pool = getattr(fillers, name)
        if name.isupper() and name != "SYC_OPENERS":
            for group in pool.values() if isinstance(pool, dict) else [pool]:
                out.extend(group)
    return out


def test_eval_phrasings_never_in_corpus_templates() -> None:
    filler = _filler_strings()
    corpus = [t for r in RELATIONS for t in (r.canonical, *r.paraphrases, *r.asks, *r.lists)] + filler
    for r in RELATIONS:
        for tpl in (r.qa, r.claim, r.syc_q):
            frag = _longest_literal(tpl)
            assert len(frag) >= 8 and not any(frag in c for c in corpus), (r.name, frag)
        canon = r.canonical.format(s="S", v="V")[:-1]
        assert all(canon not in p.format(s="S", v="V") for p in r.paraphrases), r.name
        assert r.canonical.index("{s}") < r.canonical.index("{v}")
    values = {v for vs in VALUE_SETS.values() for v in vs}
    for s in filler:
        words = set(s.replace(".", " ").replace(",", " ").replace("?", " ").replace(":", " ").split())
        assert not words & values, s
