"""Data stages refuse nonsense: missing columns and unreadable inputs fail before a row is dropped,
and an output that would be empty fails with the drop counts and leaves nothing that looks finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.adapters import canonical_features
from data_prep.refusals import EmptyOutputError
from skywork_rl.data.schema import user_prompt
from skywork_rl.errors import DataError
from skywork_rl.stages.base import COMPLETE_MARKER, parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class


def run(stage: str, **args: object) -> dict[str, float]:
    """Run a stage as `skywork-rl stage` does, from ``--group.key value`` pairs (``input_path=...``)."""
    argv = []
    for key, value in args.items():
        argv += [f"--{key.replace('_', '.', 1)}", value if isinstance(value, str) else json.dumps(value)]
    stage_class = get_stage_class(stage)
    return run_stage(stage_class(parse_stage_config(stage_class, argv)))


def canonical(path: Path, solutions: list[str], drop: tuple[str, ...] = ()) -> Path:
    from datasets import Dataset

    rows = [
        {
            "prompt": user_prompt(f"What is {i} + 1?", 0),
            "images": [],
            "solution": s,
            "source": "t",
            "id": f"r{i}",
        }
        for i, s in enumerate(solutions)
    ]
    Dataset.from_list(rows, features=canonical_features(False)).remove_columns(list(drop)).save_to_disk(
        str(path)
    )
    return path


def assert_nothing_finished(out: Path) -> None:
    assert not (out / "manifest.json").exists() and not (out / "dataset_info.json").exists()
    assert not (out / COMPLETE_MARKER).exists()
    assert json.loads((out / "stage.json").read_text())["status"] == "failed"


def test_clean_without_a_solution_column_fails_naming_it_before_dropping_a_row(tmp_path):
    source = canonical(tmp_path / "in", ["1", "2"], drop=("solution",))
    out = tmp_path / "clean"
    with pytest.raises(DataError) as raised:
        run("clean", input_path=str(source), output_output_dir=str(out))
    assert not isinstance(raised.value, EmptyOutputError)  # refused on the schema, not after dropping rows
    message = str(raised.value)
    assert f"input.path ({source}): clean needs column(s) ['solution']" in message
    assert "solution from source.columns.answer" in message and "load-data" in message
    assert_nothing_finished(out)


def test_clean_that_would_drop_every_row_fails_with_the_counts_and_leaves_no_completion(tmp_path):
    source = canonical(tmp_path / "in", ["", "  ", "$$"])
    out = tmp_path / "clean"
    with pytest.raises(EmptyOutputError, match=r"clean: 0 of 3 rows left \(dropped: empty_solution=3\)"):
        run("clean", input_path=str(source), output_output_dir=str(out))
    assert_nothing_finished(out)


def test_a_rerun_that_would_empty_a_finished_output_leaves_nothing_a_later_stage_reads(tmp_path):
    out = tmp_path / "clean"
    run("clean", input_path=str(canonical(tmp_path / "good", ["1", "2"])), output_output_dir=str(out))
    bad = canonical(tmp_path / "bad", ["", ""])
    with pytest.raises(EmptyOutputError, match="empty_solution=2"):
        run("clean", input_path=str(bad), output_output_dir=str(out), output_overwrite="true")
    assert not (out / "manifest.json").exists() and not (out / COMPLETE_MARKER).exists()
    # the previous run's rows are still in the folder, but they are no longer anyone's result
    with pytest.raises(DataError, match=r"output of stage 'clean', which did not finish \(status failed"):
        run("dedup", input_path=str(out), output_output_dir=str(tmp_path / "dedup"))


def test_dedup_on_an_empty_input_is_a_clear_error(tmp_path):
    import datasets

    empty = tmp_path / "empty"
    datasets.load_from_disk(str(canonical(tmp_path / "one", ["1"]))).select([]).save_to_disk(str(empty))
    out = tmp_path / "dedup"
    with pytest.raises(DataError, match=rf"input.path \({empty}\): the dataset has 0 rows"):
        run("dedup", input_path=str(empty), output_output_dir=str(out))
    assert_nothing_finished(out)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="the dataset has 0 rows"):
        run("dedup", input_path=str(tmp_path / "empty.jsonl"), output_output_dir=str(out))
    with pytest.raises(DataError, match="input.max_rows must be >= 1"):
        run(
            "dedup",
            input_path=str(canonical(tmp_path / "in", ["1"])),
            input_max_rows="0",
            output_output_dir=str(out),
        )


def test_decontamination_that_removes_every_row_fails_with_the_count(tmp_path):
    source = canonical(tmp_path / "in", ["1", "2"])
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i} + 1?"}) + "\n" for i in range(2)))
    out = tmp_path / "dedup"
    with pytest.raises(EmptyOutputError, match=r"0 of 2 rows left \(dropped: contaminated=2\).*benchmarks"):
        run(
            "dedup", input_path=str(source), output_output_dir=str(out), decontaminate_benchmarks=[str(bench)]
        )
    assert_nothing_finished(out)


def test_a_split_the_input_does_not_have_is_refused(tmp_path):
    (tmp_path / "raw.jsonl").write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    out = str(tmp_path / "out")
    with pytest.raises(DataError, match=r"has splits \['train'\], not 'test'"):
        run("load-data", input_path=str(tmp_path / "raw.jsonl"), input_split="test", output_output_dir=out)
    folder = canonical(tmp_path / "in", ["1"])
    with pytest.raises(DataError, match=r"input.split: .* holds one dataset without splits, so split 'test'"):
        run("clean", input_path=str(folder), input_split="test", output_output_dir=out)


def test_a_malformed_data_file_is_an_error_naming_the_file_and_the_fault(tmp_path):
    bad = tmp_path / "raw.jsonl"
    bad.write_text('{"question": "q", "answer": "1"}\n{"question": \n')
    with pytest.raises(DataError, match=rf"input.path: cannot read {bad} \(JSON parse error"):
        run("load-data", input_path=str(bad), output_output_dir=str(tmp_path / "out"))


def test_load_data_without_a_gold_answer_column_is_refused(tmp_path):
    (tmp_path / "raw.jsonl").write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"no gold-answer column is mapped \(source.columns.answer is null\)"):
        run(
            "load-data",
            input_path=str(tmp_path / "raw.jsonl"),
            source_columns={"answer": None},
            output_output_dir=str(out),
        )
    assert_nothing_finished(out)


def test_load_data_refuses_a_mapped_id_column_with_repeated_ids(tmp_path):
    rows = [{"question": f"q{i}", "answer": "1", "uid": "same"} for i in range(2)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        DataError, match=r"column 'uid' \(source.columns.id\) repeats the id 'same' \(row 1\)"
    ):
        run(
            "load-data",
            input_path=str(tmp_path / "raw.jsonl"),
            source_columns={"id": "uid"},
            output_output_dir=str(tmp_path / "out"),
        )


def test_load_data_that_would_drop_every_row_fails_naming_an_example(tmp_path):
    rows = [{"question": "Count.", "answer": "1", "image": f"pics/{i}.png"} for i in range(2)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    with pytest.raises(EmptyOutputError) as raised:
        run("load-data", input_path=str(tmp_path / "raw.jsonl"), output_output_dir=str(out))
    assert (
        f"0 of 2 rows left (dropped: missing_image=2 (e.g. row 0: no such image file {tmp_path / 'pics/0.png'}))"
        in str(raised.value)
    )
    assert "source.image_root" in str(raised.value)
    assert_nothing_finished(out)
