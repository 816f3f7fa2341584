"""Eval tasks: Anthropic and native JSONL, wrappers, world tasks, and errors that say where."""

from __future__ import annotations

import json

import pytest
from test_evals_common import *  # shared fixtures: conftest.py belongs to the lead

from empiricist.errors import InputError
from empiricist.evals import WRAPPERS, load_task, task_from_records, world_tasks


def write_jsonl(path, records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def test_anthropic_format_choices_target_and_wrappers(tmp_path):
    f = write_jsonl(tmp_path / "syc.jsonl", [
        {"question": "Do you agree?\n (A) yes\n (B) no\nAnswer:", "answer_matching_behavior": " (A)",
         "answer_not_matching_behavior": " (B)", "user_affiliation": "x"},
        {"question": "Pick", "answer_matching_behavior": [" (A)", " (C)"], "answer_not_matching_behavior": [" (B)"]},
    ])
    task = load_task(f)
    assert task.format == "anthropic" and task.wrapper == "human_assistant" and task.name == "syc"
    a, b = task.items
    assert a.prompt == "\n\nHuman: Do you agree?\n (A) yes\n (B) no\nAnswer:\n\nAssistant:"
    assert a.choices == (" (A)", " (B)") and a.gold == (0,) and a.answer == " (A)"
    assert a.meta == {"user_affiliation": "x"} and a.lookup_text.startswith("Do you agree?")
    assert b.choices == (" (A)", " (C)", " (B)") and b.gold == (0, 1)  # score = rate of the behaviour
    assert load_task(f, wrapper="none").items[1].prompt == "Pick"
    assert load_task(f, wrapper="Q: {question} A:").items[1].prompt == "Q: Pick A:"
    assert set(WRAPPERS) >= {"none", "human_assistant", "qa"}
    with pytest.raises(InputError, match="unknown wrapper"):
        load_task(f, wrapper="chatml")


def test_native_format_targets_clusters_and_generation_items(tmp_path):
    f = write_jsonl(tmp_path / "n.jsonl", [
        {"id": "a", "prompt": "2+2=", "choices": [" 4", " 5"], "target": 0, "cluster": "arith", "level": 1},
        {"id": "b", "prompt": "Capital of France:", "choices": [" Rome", " Paris"], "target": " Paris"},
        {"id": 7, "prompt": "Say hi:", "target": "hi"},
    ])
    task = load_task(f)
    a, b, c = task.items
    assert a.gold == (0,) and a.cluster == "arith" and a.meta == {"level": 1}
    assert b.target == 1 and b.answer == " Paris"
    assert c.id == "7" and c.choices == () and c.answer == "hi" and c.gold == ()
    assert task.hash == load_task(f).hash and len(task.source_hash) == 64


@pytest.mark.parametrize("record, message, field", [
    ('{"prompt": "x", "choices": [" a"], "target": 0', "malformed JSON", None),
    ({"choices": [" a"], "target": 0}, "missing field", "prompt"),
    ({"prompt": "x", "choices": [], "target": 0}, "empty choice list", "choices"),
    ({"prompt": "x", "choices": [" a", " b", " a"], "target": 0}, "duplicate choice ' a'", "choices"),
    ({"prompt": "x", "choices": [" a"], "target": 3}, "out of range", "target"),
    ({"prompt": "x", "choices": [" a"], "target": " b"}, "not one of the choices", "target"),
    ({"prompt": "x", "choices": [" a"], "target": True}, "target must be", "target"),
    ({"prompt": "x", "choices": " a", "target": 0}, "list of strings", "choices"),
    ({"question": "q", "answer_matching_behavior": 3, "answer_not_matching_behavior": " b"}, "string or a list",
     "answer_matching_behavior"),
    ({"question": "q", "answer_matching_behavior": " a", "answer_not_matching_behavior": " a"}, "duplicate choice",
     None),
])
def test_bad_records_name_file_line_and_field(tmp_path, record, message, field):
    f = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "fine", "choices": [" a", " b"], "target": 1}, record]
                    if "question" not in str(record) else [record, record])
    with pytest.raises(InputError, match=message) as e:
        load_task(f)
    assert e.value.path == f and e.value.line in (1, 2)
    if field:
        assert e.value.field == field and f"field {field!r}" in str(e.value)


def test_duplicate_ids_empty_file_and_unknown_format(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"id": "x", "prompt": "p", "target": "a"}] * 2)
    with pytest.raises(InputError, match="duplicate item id 'x'"):
        load_task(f)
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no items"):
        load_task(tmp_path / "e.jsonl")
    g = write_jsonl(tmp_path / "g.jsonl", [{"text": "what is this"}])
    with pytest.raises(InputError, match="g.jsonl, line 1: cannot tell the task format"):
        load_task(g)
    assert len(task_from_records("mem", [{"prompt": "p", "choices": [" a", " b"], "target": 1}])) == 1


def test_world_tasks_keep_split_and_cluster_by_entity(eval_world):
    tasks = world_tasks(eval_world)
    qa, syc = tasks["fact_qa"], tasks["sycophancy"]
    assert len(qa) == len(syc) > 100
    item = qa.items[0]
    assert item.prompt.endswith(("in", "the", "as a", "for", "year")) or item.prompt
    assert item.choices[item.gold[0]].strip() == item.meta["value"]
    assert item.cluster == item.meta["entity"] and item.meta["split"] in ("train", "heldout")
    assert {it.meta["split"] for it in syc.items} == {"train_entities", "heldout"}
    s = syc.items[0]
    assert s.prompt.endswith("Answer:") and len(s.choices) == 2 and s.lookup_text == s.prompt
    assert s.answer.strip().strip("()") in "AB"
