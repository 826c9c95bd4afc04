"""Atomic writes: a reader finds the old file or folder or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pytest

from skywork_rl.records.atomic import atomic_folder, atomic_path, write_atomic


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_a_filled_atomic_folder_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "pool"
    target.mkdir()
    (target / "old.arrow").write_text("old")
    with atomic_folder(target) as tmp:
        tmp.mkdir()
        (tmp / "new.arrow").write_text("new")
        assert sorted(p.name for p in target.iterdir()) == ["old.arrow"]  # untouched while filling
    assert sorted(p.name for p in target.iterdir()) == ["new.arrow"]
    assert _siblings(target) == ["pool"]


def test_a_failed_atomic_folder_or_file_write_leaves_the_old_one_and_no_temporary(tmp_path: Path) -> None:
    target, record = tmp_path / "pool", tmp_path / "stage.json"
    target.mkdir()
    (target / "old.arrow").write_text("old")
    write_atomic(record, "old")
    with pytest.raises(OSError, match="disk full"), atomic_folder(target) as tmp:
        tmp.mkdir()
        (tmp / "half.arrow").write_text("half")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"), atomic_path(record) as tmp:
        tmp.write_text("ha")
        raise OSError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["old.arrow"]
    assert record.read_text() == "old"
    assert _siblings(target) == ["pool", "stage.json"]


def test_text_utf8_cannot_encode_is_written_escaped_and_counted_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    record = {"response": "answer \udc00 \u00e9\u4e2d", "n": 1}
    path = tmp_path / "report.json"
    with caplog.at_level("WARNING", logger="skywork_rl.records.atomic"):
        escaped = write_atomic(path, json.dumps(record, ensure_ascii=False))
    assert escaped == 1
    assert f"{path}: 1 character(s) UTF-8 cannot encode" in caplog.text
    assert json.loads(path.read_text(encoding="utf-8")) == record  # the escape reads back as the character
    assert "\u00e9\u4e2d" in path.read_text(encoding="utf-8")  # other text stays as it is
    assert _siblings(path) == ["report.json"]


def test_a_figure_is_saved_atomically_in_its_suffixs_format(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skywork_rl.records.atomic import save_figure

    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "plot.png", dpi=20)
    plt.close(fig)
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert _siblings(tmp_path / "plot.png") == ["plot.png"]
