"""Held-out scoring is bounded: an answer no checker can judge fails the measurement naming its row,
within the documented deadlines, and a training stage whose measurement fails says so and keeps its model.

The hang tests run the scoring in a subprocess under a wall-clock limit, so a regression to an
unbounded retry fails them instead of hanging the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from datasets import Dataset

# The three answers: math-verify / sympy evaluate them without end.
UNJUDGEABLE = {
    "tower": "9^{9^{9^{9}}}",
    "braces": "{" * 200_000,
    "pi_tower": "10^{10^{10^{10}}}\\pi",
}

_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import skywork_rl.miniature.heldout as heldout

    heldout.SCORE_TIMEOUT_S, heldout.RETRY_TIMEOUT_S = 1.0, 2.0
    cases = json.loads(sys.stdin.read())
    out = {}
    for name, (gold, answer) in cases.items():
        start = time.monotonic()
        try:
            heldout.evaluate_completions([{"id": name, "solution": gold}], [answer])
            out[name] = ["scored", time.monotonic() - start]
        except heldout.HeldoutScoringError as error:
            out[name] = [str(error), time.monotonic() - start]
    print("RESULT " + json.dumps(out))
    """
)


def _score_in_subprocess(cases: dict[str, tuple[str, str]], limit_s: float) -> dict[str, list]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            timeout=limit_s,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"held-out scoring did not finish within {limit_s:g} s: it is not bounded")
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_unjudgeable_gold_answers_fail_the_measurement_naming_the_row_instead_of_hanging():
    cases = {name: (gold, "<think>x</think> \\boxed{3}") for name, gold in UNJUDGEABLE.items()}
    # Deadlines 1 s + 2 s per answer plus worker start-up; 240 s is far above that even at load 10.
    results = _score_in_subprocess(cases, limit_s=240)
    for name, (message, _seconds) in results.items():
        assert f"row 0 (id '{name}'" in message, (name, message)
        assert "could not be scored within 1 s and then 2 s" in message


@pytest.mark.slow
def test_unjudgeable_model_answers_fail_the_measurement_instead_of_hanging():
    cases = {
        "tower": ("3", "<think>x</think> \\boxed{9^{9^{9^{9}}}}"),
        "pi_tower": ("3", "<think>x</think> \\boxed{10^{10^{10^{10}}}\\pi}"),
    }
    results = _score_in_subprocess(cases, limit_s=240)
    for name, (message, _seconds) in results.items():
        assert f"row 0 (id '{name}'" in message, (name, message)


@pytest.mark.slow
@pytest.mark.timeout(600, method="thread")
def test_stage_whose_heldout_measurement_fails_records_failed_and_keeps_its_trained_model(
    tiny_internvl, synthetic_dataset_dir, tmp_path, monkeypatch
):
    import skywork_rl.miniature.heldout as heldout
    from skywork_rl.generation.transformers_backend import TransformersBackend
    from skywork_rl.stages.base import parse_stage_config, run_stage
    from skywork_rl.stages.sft import SFTStage

    monkeypatch.setattr(heldout, "SCORE_TIMEOUT_S", 1.0, raising=False)
    monkeypatch.setattr(heldout, "RETRY_TIMEOUT_S", 2.0, raising=False)

    # The model's answers are fixed (a tiny untrained model boxes nothing); the scoring is the real one.
    def generate(self, rows, num_generations=1, **kwargs):
        return [["<think>x</think> \\boxed{3}"] * num_generations for _ in rows]

    monkeypatch.setattr(TransformersBackend, "generate", generate)
    rows = [{"id": "fine", "solution": "3"}, {"id": "tower", "solution": UNJUDGEABLE["tower"]}]
    Dataset.from_list([{"prompt": [{"role": "user", "content": "q"}], **r} for r in rows]).save_to_disk(
        str(tmp_path / "heldout")
    )
    out = tmp_path / "sft"
    argv = [
        f"--model.name_or_path={tiny_internvl}",
        f"--data.train={synthetic_dataset_dir}",
        f"--training.output_dir={out}",
        "--training.max_steps=1",
        "--training.per_device_train_batch_size=2",
        "--training.save_strategy=no",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        f"--heldout.data={tmp_path / 'heldout'}",
    ]
    with pytest.raises(heldout.HeldoutScoringError, match="row 1 \\(id 'tower'") as raised:
        run_stage(SFTStage(parse_stage_config(SFTStage, argv)))
    assert f"the trained model is saved in {out}" in str(raised.value)
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "failed"
    assert "HeldoutScoringError" in record["error"] and "id 'tower'" in record["error"]
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not (out / ".stage_complete").exists()


@pytest.mark.slow
@pytest.mark.timeout(600, method="thread")
def test_heldout_command_ends_an_unjudgeable_row_with_one_error_line(
    tiny_internvl, tmp_path, monkeypatch, capsys
):
    import runpy

    from skywork_rl.generation.transformers_backend import TransformersBackend

    def generate(self, rows, num_generations=1, **kwargs):
        return [["<think>x</think> \\boxed{3}"] * num_generations for _ in rows]

    monkeypatch.setattr(TransformersBackend, "generate", generate)
    monkeypatch.delenv("SKYWORK_RL_DEBUG", raising=False)
    rows = [{"prompt": [{"role": "user", "content": "q"}], "id": "pi", "solution": UNJUDGEABLE["pi_tower"]}]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "heldout"))
    argv = [
        "python -m skywork_rl.miniature.heldout",
        "--model",
        str(tiny_internvl),
        "--data",
        str(tmp_path / "heldout"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as ended:  # the module's own deadlines: 5 s, then 30 s
        runpy.run_module("skywork_rl.miniature.heldout", run_name="__main__")
    assert ended.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("error: held-out accuracy: 1 of 1 answers could not be scored")
        and "id 'pi'" in err[-1]
    )
    assert not any(line.startswith("Traceback") for line in err)
