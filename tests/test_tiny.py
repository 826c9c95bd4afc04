"""Tiny checkpoints are normal HF folders (per-family loading, forward and generate: tests/families)."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from skywork_rl.miniature.synthetic import generate_rows
from skywork_rl.miniature.tiny import main


def test_tiny_checkpoint_saved_weights_equal_loaded_weights(tiny_internvl, tmp_path):
    model = AutoModelForImageTextToText.from_pretrained(tiny_internvl)
    model.save_pretrained(tmp_path)
    again = AutoModelForImageTextToText.from_pretrained(tmp_path)
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


def test_tokenizer_keeps_think_tags_and_renders_reasoning(tiny_internvl):
    processor = AutoProcessor.from_pretrained(tiny_internvl)
    tok = processor.tokenizer
    ids = tok("<think>\nx\n</think>\nThe answer is \\boxed{7}.")["input_ids"]
    assert tok.convert_tokens_to_ids("<think>") in ids
    assert "<think>" in tok.decode(ids, skip_special_tokens=True)
    row = next(generate_rows(1))
    text = processor.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert "<IMG_CONTEXT>" in text and "</think>" in text


def test_make_tiny_model_cli_writes_a_loadable_folder(tmp_path, capsys):
    assert main(["--arch", "llava", "--out", str(tmp_path / "m")]) == 0
    assert "parameters" in capsys.readouterr().out
    assert json.loads((tmp_path / "m" / "tiny_model.json").read_text())["arch"] == "llava"
    assert AutoProcessor.from_pretrained(tmp_path / "m").tokenizer.eos_token == "<|im_end|>"
