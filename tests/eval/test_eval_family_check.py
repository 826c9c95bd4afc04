"""`eval` and `select` refuse, before generating, rows a checkpoint's family cannot take: one line."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from helpers import cli_error


@pytest.mark.slow
def test_eval_of_paligemma_on_a_text_only_benchmark_is_refused_before_generating(tmp_path, tiny_model_dir):
    model = tiny_model_dir["paligemma"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "aime.jsonl").write_text(
        json.dumps({"id": "2024-I-1", "problem": "What is 2+2?", "answer": "4"}) + "\n"
    )
    out = tmp_path / "eval"
    code, line = cli_error(
        [
            "eval",
            "--model",
            str(model),
            "--benchmarks",
            "aime",
            "--data-dir",
            str(data),
            "--output-dir",
            str(out),
        ],
        tmp_path,
    )
    assert code == 2  # eval's exit code for a refused run
    assert f"eval aime (model {model}): paligemma models cannot take a prompt without an image" in line
    assert "Fix: give every row an image" in line
    assert not (out / "aime.responses.jsonl").exists()  # nothing was generated


@pytest.mark.slow
def test_select_with_a_paligemma_checkpoint_and_text_only_probes_is_refused(tmp_path, tiny_model_dir):
    model = tiny_model_dir["paligemma"]
    probes = tmp_path / "probes"
    Dataset.from_list(
        [{"prompt": [{"role": "user", "content": "What is 2+2?"}], "images": [], "solution": "4"}]
    ).save_to_disk(str(probes))
    code, line = cli_error(
        [
            "select",
            "--checkpoints",
            str(model),
            "--probe-data",
            str(probes),
            "--output-dir",
            str(tmp_path / "s"),
        ],
        tmp_path,
    )
    assert code != 0
    assert f"select {model}: paligemma models cannot take a prompt without an image" in line
