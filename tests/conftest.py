"""Shared fixtures: tiny real checkpoints and synthetic data, built once per test session."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny checkpoints by arch (any of `skywork_rl.miniature.tiny.TINY_ARCHS`), written on first use and shared."""
    from skywork_rl.miniature.tiny import TINY_ARCHS, make_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")

    class _Lazy(dict):
        def __missing__(self, arch: str) -> Path:
            if arch not in TINY_ARCHS:
                raise KeyError(arch)
            path = make_tiny_model(arch, root / arch)
            self[arch] = path
            return path

    return _Lazy()


@pytest.fixture(scope="session")
def tiny_internvl(tiny_model_dir: dict[str, Path]) -> Path:
    """Path of the tiny InternVL checkpoint (the papers' architecture)."""
    return tiny_model_dir["internvl"]


@pytest.fixture(scope="session")
def synthetic_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 synthetic canonical rows (with SFT traces) saved with `save_to_disk`."""
    from skywork_rl.miniature.synthetic import build_dataset

    path = tmp_path_factory.mktemp("synthetic") / "data"
    build_dataset(48, seed=0).save_to_disk(str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the repo; tests that need it skip when it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_text_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random text reward model (Qwen2 sequence classifier, one label) with a locally trained
    BPE tokenizer and a ChatML template, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForSequenceClassification

    corpus = [
        "What is 2 + 2? <think> add </think> The answer is \\boxed{4}.",
        "0123456789 abcdefghijklmnopqrstuvwxyz",
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = (
        "{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
        "{%- endfor -%}"
    )
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    out = tmp_path_factory.mktemp("text-rm")
    Qwen2ForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def grpo_step_logged_keys(tiny_internvl: Path, tmp_path: Path) -> Callable[[Any], set[str]]:
    """A function: one real TRL `GRPOTrainer` step of the tiny InternVL with the rewards a `RewardArguments`
    builds (four arithmetic prompts, two generations each); returns every metric name the step logged."""

    def run(reward_args: Any) -> set[str]:
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from skywork_rl.families.parts import load_model_and_processor
        from skywork_rl.rewards.registry import build_reward_funcs

        model, processor = load_model_and_processor(str(tiny_internvl))
        rows = [
            {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "solution": str(2 * i)}
            for i in range(4)
        ]
        funcs, weights = build_reward_funcs(reward_args)
        args = GRPOConfig(
            output_dir=str(tmp_path),
            max_steps=1,
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=8,
            logging_steps=1,
            report_to=[],
            bf16=False,
            use_cpu=True,
            reward_weights=weights,
            save_strategy="no",
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=processor,
        )
        trainer.train()
        return {key for entry in trainer.state.log_history for key in entry}

    return run


@pytest.fixture(scope="session")
def tiny_vocab_words(tiny_internvl: Path) -> list[str]:
    """Whole words (3+ letters) that are single tokens of the tiny models' tokenizer.

    A random-weight model samples nearly uniformly over its vocabulary, so which English word it
    happens to say ("wait", "the") depends on the tokenizer's merges, which follow the synthetic
    corpus. Tests of critical-token entropy on such a model name these words instead, so that they
    check the measurement on real generations, not an accident of the corpus.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_internvl))
    words = set()
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id]).strip()
        if len(text) >= 3 and text.isalpha() and text.isascii():
            words.add(text.lower())
    assert len(words) >= 20, f"the tiny tokenizer has only {len(words)} whole-word tokens"
    return sorted(words)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast lane (``pytest -m "not slow"`` over the whole of tests/, run to the end) must import every
    first-party module in this process; one no fast test imports fails the run, naming it. Only this
    exact lane is checked: a selection of tests or the full suite is not."""
    config = session.config
    whole_tree = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.keyword
    lane = config.option.markexpr == "not slow" and whole_tree and not config.option.collectonly
    if not lane or exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return
    import sys

    from helpers import fast_lane_gaps

    missing = fast_lane_gaps(sys.modules)
    if missing:
        session.config.get_terminal_writer().line(
            f"fast lane: no test marked fast imports {', '.join(missing)}: add a fast test that exercises "
            "each (or unmark one of its slow tests)",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
