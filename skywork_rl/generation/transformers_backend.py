"""The transformers backend: `model.generate` in batches, on a CPU or one GPU, with a per-step hook.

What needs more than text (critical-token entropy: the tokens and a value of each step's raw
logits) asks `TransformersBackend.generate_completions` for it with a per-step hook, so there is one
generation loop in the project (TRL's GRPO rollouts aside).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skywork_rl.generation.protocol import SamplingParams, images_of

logger = logging.getLogger("skywork_rl")


@contextmanager
def seeded_rng(seed: int, device: Any) -> Iterator[None]:
    """Seed the CPU generator (and `device`'s, when it is a CUDA device) for the block, then give the
    caller its own RNG state back.

    Callbacks generate in the middle of training: a bare `torch.manual_seed` there would restart
    TRL's rollout sampling from the same stream after every monitor step, identically on every
    process. `fork_rng` saves and restores the state around the seeded block instead.
    """
    import torch

    device = torch.device(device)
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


@dataclass
class Completion:
    """One generated completion: its text, its tokens up to the first EOS, and, when a step
    statistic was asked for, that statistic of each of those tokens' raw next-token logits."""

    text: str
    token_ids: list[int]
    step_values: list[float] | None = None


# raw next-token logits [B, V] of one step -> one value per sequence [B] (e.g. the entropy)
StepStatistic = Callable[[Any], Any]


class StepRecorder:
    """Records a `StepStatistic` of every generation step's *raw* logits into a [B, T] buffer.

    Two public hooks, no patched internals. A forward hook on the model keeps the last position's
    logits of each forward pass (exactly what ``generate(output_logits=True)`` returns for the
    step); this object, passed to ``generate`` as a logits processor, is then called once per
    generated token and turns them into the step's value. It does not read the ``scores`` it is
    given: `generate` runs the processors the checkpoint's generation config implies (repetition
    penalty, ...) before any passed in, so those are no longer the model's distribution. Keeping
    [B, T] values instead of ``output_logits``' [B, T, V] matters at a 152k vocabulary.
    """

    def __init__(self, statistic: StepStatistic, max_new_tokens: int) -> None:
        self.statistic, self.max_new_tokens = statistic, max_new_tokens
        self.values: Any = None
        self.step = 0
        self._logits: Any = None

    def keep_logits(self, module: Any, args: Any, output: Any) -> None:
        """Forward hook: the logits that predict the next token (a view, replaced every pass)."""
        self._logits = output.logits[:, -1]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        values = self.statistic(self._logits)
        if self.values is None:
            self.values = torch.zeros(values.shape[0], self.max_new_tokens, device=values.device)
        self.values[:, self.step] = values
        self.step += 1
        self._logits = None
        return scores


class TransformersBackend:
    """`model.generate` in batches; works on CPU and on a single GPU.

    A model given as an object is used in place (moved only if it is on another device); it is left
    in eval mode, so a caller in the middle of training puts it back with ``model.train()``.
    """

    def __init__(
        self,
        model: Any,
        processor: Any = None,
        *,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        device: str | None = None,
    ) -> None:
        if isinstance(model, str):
            from skywork_rl.families.parts import load_model_and_processor  # defers torch

            model, loaded_processor = load_model_and_processor(model, trust_remote_code=trust_remote_code)
            processor = processor or loaded_processor
        if processor is None:
            raise ValueError(
                "TransformersBackend: a processor is needed when the model is given as an object"
            )
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if next(model.parameters()).device != torch.device(self.device):
            model = model.to(self.device)
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.tokenizer = getattr(processor, "tokenizer", processor)

    def generate(self, rows: Sequence[dict[str, Any]], **options: Any) -> list[list[str]]:
        """Completions for each row, in row order; seeded by `sampling.seed`, the caller's RNG state
        untouched. Keyword arguments as `generate_completions`: the protocol's (`sampling`,
        `num_generations`) and `progress`."""
        return [[c.text for c in row] for row in self.generate_completions(rows, **options)]

    def generate_completions(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        sampling: SamplingParams | None = None,
        num_generations: int = 1,
        step_statistic: StepStatistic | None = None,
        progress: str | None = None,
    ) -> list[list[Completion]]:
        """`generate` with the tokens of each completion and, given `step_statistic`, its value at
        every generated token (`StepRecorder`); `progress` names a progress bar over the rows."""
        from tqdm.auto import tqdm

        sampling = sampling or SamplingParams()
        bar = tqdm(total=len(rows), desc=progress, unit="prompt", leave=False, disable=progress is None)
        with bar, seeded_rng(sampling.seed, self.device):
            outputs: list[list[Completion]] = []
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                outputs += self._generate_batch(batch, sampling, num_generations, step_statistic)
                bar.update(len(batch))
        return outputs

    def _generate_batch(
        self,
        batch: Sequence[dict[str, Any]],
        sampling: SamplingParams,
        num_generations: int,
        step_statistic: StepStatistic | None,
    ) -> list[list[Completion]]:
        import torch

        do_sample, max_new_tokens = not sampling.greedy, sampling.max_new_tokens
        texts = [
            self.processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            for r in batch
        ]
        images = [images_of(r) for r in batch]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if any(images):
            kwargs["images"] = images
        self.tokenizer.padding_side = "left"
        inputs = self.processor(**kwargs).to(self.device)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            # greedy decoding gives one answer per prompt (transformers refuses n > 1 without
            # sampling): generate it once and repeat it n times below
            "num_return_sequences": num_generations if do_sample else 1,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if do_sample:
            gen_kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
        if sampling.repetition_penalty != 1.0:  # applies to greedy decoding too
            gen_kwargs["repetition_penalty"] = sampling.repetition_penalty
        recorder, hook = None, None
        if step_statistic is not None:
            from transformers import LogitsProcessorList

            recorder = StepRecorder(step_statistic, max_new_tokens)
            gen_kwargs["logits_processor"] = LogitsProcessorList([recorder])
            hook = self.model.register_forward_hook(recorder.keep_logits)
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, **gen_kwargs)
        finally:
            if hook is not None:
                hook.remove()
        tails = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        step_values = recorder.values[:, : tails.shape[1]].tolist() if recorder else None
        eos = self._eos_ids()
        completions: list[Completion] = []
        for i, ids in enumerate(tails.tolist()):
            length = next((t for t, token in enumerate(ids) if token in eos), len(ids))
            values = step_values[i][:length] if step_values is not None else None
            completions.append(Completion(decoded[i], ids[:length], values))
        per_row = num_generations if do_sample else 1
        grouped = [completions[i * per_row : (i + 1) * per_row] for i in range(len(batch))]
        return grouped if do_sample else [group * num_generations for group in grouped]

    def _eos_ids(self) -> set[int]:
        """Tokens that end a completion: the generation config's EOS ids and the tokenizer's."""
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
        return {int(i) for i in ids | {self.tokenizer.eos_token_id} if i is not None}
