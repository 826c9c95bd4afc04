"""R1V3's accuracy reward: 1 when the rule checker OR an LLM judge accepts the final answer.

Skywork-R1V3 (arXiv 2507.06167) scores RL answers with "an LLM verifier OR the rule checker". The
rule side is `skywork_rl.rewards.accuracy` unchanged (math-verify, multiple choice, worker pool,
deadlines, batch budget). The judge side is any causal LM or VLM by path or hub id, run through
the project's generation backends (transformers, or vLLM on GPUs) and asked whether the extracted
final answer matches the gold one (`skywork_rl.rewards.judge_prompt`: the prompt and how the reply
is read). Every answered completion is judged, also the ones the rules accept, so the logs say how
often each side alone accepted; verdicts are cached per (answer, gold), so a group's repeated
answers cost one question.

Metrics, counts per batch, through TRL's ``log_metric`` (``<name>`` is ``verifier``):
- ``rewards/<name>/failures``: scored 0.0 without a verdict: neither side accepted and one of them
  could not decide (the rule check timed out or crashed; the judge ran out of budget or replied
  unparsably). Same convention as ``rewards/accuracy/failures``.
- ``rewards/<name>/no_answer``: no final answer to check (not a failure; the judge is not asked).
- ``rewards/<name>/rule_only``, ``judge_only``, ``both``: accepted by the rules and not the judge
  (rejected or undecided), by the judge and not the rules, by both.
- ``rewards/<name>/judge_unparsable``, ``judge_out_of_budget``, ``judge_cached``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from skywork_rl.generation.backends import make_backend
from skywork_rl.rewards.accuracy import (
    DEFAULT_BATCH_BUDGET_S,
    DEFAULT_TIMEOUT_S,
    AccuracyResult,
    AccuracyReward,
)
from skywork_rl.rewards.completions import completion_text
from skywork_rl.rewards.judge import DEFAULT_JUDGE_BUDGET_S, OUT_OF_BUDGET, UNPARSABLE, Judge
from skywork_rl.rewards.judge_prompt import DEFAULT_JUDGE_PROMPT, JudgeQuery, check_template, judge_query
from skywork_rl.rewards.loading import outside_zero3_init, resolve_checkpoint

if TYPE_CHECKING:
    from skywork_rl.rewards.config import RewardArguments


def build_judge_backend(
    model: str,
    *,
    backend: str = "transformers",
    backend_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    key: str = "rewards.verifier_model",
) -> Any:
    """The judge's generation backend on this process's device (`skywork_rl.generation.backends.make_backend`).

    transformers: a VLM (config with a vision part) loads with its processor, any other checkpoint as
    a causal LM with its tokenizer; loaded outside ZeRO-3's ``zero.Init`` and kept whole on this
    process's device (a generator cannot run partitioned: ranks generate different lengths).
    vLLM: the engine loads the checkpoint itself; ``backend_kwargs`` go to it (e.g.
    ``gpu_memory_utilization`` to share the GPU with training).
    """
    kwargs = dict(backend_kwargs or {})
    path = resolve_checkpoint(model, key=key)
    if backend == "vllm":
        return make_backend("vllm", str(path), trust_remote_code=trust_remote_code, **kwargs)
    if backend != "transformers":
        raise ValueError(f"rewards.verifier_backend: choose 'transformers' or 'vllm', got {backend!r}")
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skywork_rl.families.parts import load_model_and_processor  # defers torch
    from skywork_rl.rewards.vlm_reward_model import is_vlm_checkpoint  # defers torch

    device = PartialState().device
    with outside_zero3_init():
        if is_vlm_checkpoint(path, trust_remote_code):
            judge, processor = load_model_and_processor(str(path), trust_remote_code=trust_remote_code)
        else:
            judge = AutoModelForCausalLM.from_pretrained(
                str(path), trust_remote_code=trust_remote_code, dtype="auto"
            )
            processor = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    judge.requires_grad_(False)
    return make_backend("transformers", judge, processor=processor, device=str(device), **kwargs)


class VerifierReward(AccuracyReward):
    """TRL reward function: rule checker OR LLM judge (see the module docstring).

    The rule side is the ``accuracy`` reward itself (strict extraction, the same limits); this class
    adds the judge where the rules reject (`scores`).

    Args:
        judge: a `GenerationBackend` (e.g. a scripted one in tests) or a checkpoint path / hub id.
        backend, backend_kwargs, trust_remote_code: how a judge given by path is run.
        prompt: the judge's question template (placeholders ``{answer}``, ``{gold}``, ``{options}``).
        max_new_tokens: the judge's reply length (it is read from its first word).
        budget_s: wall-clock budget of the judge per call (None: none); questions still open when
            it runs out leave their items to the rules and count as failures if the rules reject.
        cache_size: verdicts kept.
        timeout_s, batch_budget_s, num_workers: the rule checker's, as for the ``accuracy`` reward.
    """

    kind = "verifier"

    def __init__(
        self,
        judge: Any,
        *,
        name: str = "verifier",
        backend: str = "transformers",
        backend_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        prompt: str | None = None,
        max_new_tokens: int = 8,
        budget_s: float | None = DEFAULT_JUDGE_BUDGET_S,
        cache_size: int = 100_000,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        batch_budget_s: float | None = DEFAULT_BATCH_BUDGET_S,
        num_workers: int | None = None,
    ) -> None:
        template = prompt or DEFAULT_JUDGE_PROMPT
        check_template(template)
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f"rewards.verifier_budget_s must be > 0 (or null for none), got {budget_s}")
        super().__init__(name, timeout_s, num_workers, True, batch_budget_s)
        if isinstance(judge, str):
            model = judge

            def factory() -> Any:
                return build_judge_backend(
                    model, backend=backend, backend_kwargs=backend_kwargs, trust_remote_code=trust_remote_code
                )

            judge = factory
        self.judge = Judge(
            judge, template=template, max_new_tokens=max_new_tokens, cache_size=cache_size, name=name
        )
        self.budget_s = budget_s

    def scores(
        self,
        completions: Sequence[Any],
        solution: Sequence[str | None],
        choices: Sequence[Sequence[str] | None] | None,
        rules: AccuracyResult,
        log_metric: Callable[[str, float], None] | None,
    ) -> list[float | None]:
        """1.0 where the rule check or the judge accepts the answer, else 0.0 (None without gold);
        logs who decided (both, rule_only, judge_only), the failures and the judge's counts."""
        queries: dict[int, JudgeQuery] = {}
        for i, score in enumerate(rules.scores):
            if score is not None:
                query = judge_query(
                    completion_text(completions[i]), str(solution[i]), choices[i] if choices else None
                )
                if query is not None:
                    queries[i] = query
        judged = self.judge.verdicts(list(queries.values()), self.budget_s)
        verdict = dict(zip(queries, judged.verdicts, strict=True))
        undecided = {index: judged.reasons[k] for k, index in enumerate(queries) if k in judged.reasons}
        counts = dict.fromkeys(("failures", "rule_only", "judge_only", "both"), 0)
        scores: list[float | None] = list(rules.scores)
        for i, rule in enumerate(rules.scores):
            if rule is None:
                continue
            by_rule, by_judge = rule == 1.0, verdict.get(i) is True
            scores[i] = 1.0 if by_rule or by_judge else 0.0
            if by_rule and by_judge:
                counts["both"] += 1
            elif by_rule:
                counts["rule_only"] += 1
            elif by_judge:
                counts["judge_only"] += 1
            elif i in rules.errors or i in undecided:
                counts["failures"] += 1
        if log_metric is not None:
            for key, value in counts.items():
                log_metric(f"rewards/{self.__name__}/{key}", float(value))
            log_metric(f"rewards/{self.__name__}/no_answer", float(rules.no_answer))
            reasons = list(undecided.values())
            log_metric(f"rewards/{self.__name__}/judge_unparsable", float(reasons.count(UNPARSABLE)))
            log_metric(f"rewards/{self.__name__}/judge_out_of_budget", float(reasons.count(OUT_OF_BUDGET)))
            log_metric(f"rewards/{self.__name__}/judge_cached", float(judged.cached))
        return scores


def build_verifier(args: RewardArguments, device: Any = None) -> VerifierReward:
    """The ``verifier`` reward of a recipe's ``rewards.verifier_*`` options."""
    if not args.verifier_model:
        raise ValueError(
            "rewards.reward_funcs names 'verifier' but rewards.verifier_model is not set; give the judge "
            "model's name or path (any causal LM or VLM)"
        )
    # The rule side is the accuracy reward's, with the same strict extraction and limits.
    return VerifierReward(
        args.verifier_model,
        backend=args.verifier_backend,
        backend_kwargs=args.verifier_backend_kwargs,
        trust_remote_code=args.verifier_trust_remote_code,
        prompt=args.verifier_prompt,
        max_new_tokens=args.verifier_max_new_tokens,
        budget_s=args.verifier_budget_s,
        cache_size=args.verifier_cache_size,
        timeout_s=args.timeout_s,
        batch_budget_s=args.batch_budget_s,
        num_workers=args.num_workers,
    )
