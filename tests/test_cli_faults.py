"""Faults a user hits, run through the command line as a user would: each ends in one `error:` line that
names the file or key and the fix (the traceback only under --debug)."""

from __future__ import annotations

import errno
import os
import resource
import signal
import textwrap
from pathlib import Path

import pytest
from helpers import TINY_RECIPES, cli_env, cli_error

from skywork_rl.errors import StorageError, storage_error

SFT_RECIPE = TINY_RECIPES / "sft.yaml"


def _sft(model: str, tmp_path: Path) -> list[str]:
    return [
        "stage",
        "sft",
        "--config",
        str(SFT_RECIPE),
        f"--model.name_or_path={model}",
        f"--data.train={tmp_path / 'data'}",
        f"--training.output_dir={tmp_path / 'out'}",
        "--training.max_steps=1",
    ]


@pytest.fixture
def data_dir(tmp_path, synthetic_dataset_dir):
    (tmp_path / "data").symlink_to(synthetic_dataset_dir)
    return tmp_path / "data"


@pytest.mark.slow
def test_model_path_that_is_a_file_fails_in_one_line(tmp_path, data_dir):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    code, line = cli_error(_sft("weights.bin", tmp_path), tmp_path)
    assert code == 1
    assert "model.name_or_path: weights.bin is a file, not a checkpoint folder" in line
    assert "config.json" in line


@pytest.mark.slow
def test_model_path_that_is_an_empty_folder_fails_in_one_line(tmp_path, data_dir):
    (tmp_path / "ckpt").mkdir()
    code, line = cli_error(_sft("ckpt", tmp_path), tmp_path)
    assert code == 1
    assert "model.name_or_path: ckpt has no config.json" in line and "(it is empty)" in line
    assert ".stage_complete" in line  # the hint: the stage that makes it did not finish


def _file_size_limit() -> None:
    """In the child: writes past 64 KiB fail with EFBIG, as on a disk that is full at that point."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_write_that_the_os_refuses_fails_in_one_line_and_is_recorded(tmp_path):
    code, line = cli_error(
        ["stage", "tiny-model", "--tiny.output_dir=out"], tmp_path, preexec_fn=_file_size_limit
    )
    assert code == 1
    assert line.startswith("error: writing into out (tiny.output_dir): File too large (errno 27)")
    assert "ulimit -f" in line
    record = (tmp_path / "out" / "stage.json").read_text()  # small enough to be written
    assert '"status": "failed"' in record and "File too large" in record
    assert not (tmp_path / "out" / ".stage_complete").exists()


_READ_ONLY_SHIM = """
import builtins, errno, os

_RO = {ro!r}


def _refuse(path):
    if os.path.abspath(os.fsdecode(path)).startswith(_RO + os.sep):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))


def _wrap(func, write_check):
    def wrapped(path, *args, **kwargs):
        if isinstance(path, (str, bytes, os.PathLike)) and write_check(args, kwargs):
            _refuse(path)
        return func(path, *args, **kwargs)
    return wrapped


_writes_open = lambda a, k: any(c in str(a[0] if a else k.get("mode", "r")) for c in "wax+")
_writes_os_open = lambda a, k: bool((a[0] if a else k.get("flags", 0)) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
builtins.open = _wrap(builtins.open, _writes_open)
os.open = _wrap(os.open, _writes_os_open)
os.mkdir = _wrap(os.mkdir, lambda a, k: True)
"""


@pytest.mark.slow
def test_read_only_output_folder_fails_in_one_line(tmp_path):
    ro = tmp_path / "shared"
    ro.mkdir()
    if os.geteuid() != 0:  # a real read-only folder
        ro.chmod(0o555)
        shim = None
    else:  # root writes anywhere: the OS's refusal is raised where Python asks the OS to write
        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(textwrap.dedent(_READ_ONLY_SHIM.format(ro=str(ro))))
    try:
        code, line = cli_error(
            ["stage", "tiny-model", f"--tiny.output_dir={ro / 'out'}"], tmp_path, env=cli_env(shim)
        )
    finally:
        ro.chmod(0o755)
    assert code == 1
    assert f"{ro / 'out'}" in line and "Permission denied (errno 13)" in line
    assert "make the folder writable" in line


def test_full_disk_is_recognised_from_the_os_error_or_a_library_message():
    with pytest.raises(OSError) as raised, open("/dev/full", "w") as full:  # always full: a real ENOSPC
        full.write("x")
    fault = storage_error(raised.value)
    assert isinstance(fault, StorageError) and fault.errno == errno.ENOSPC
    # a buffered write does not say which file; run_stage says which folder (`where`)
    assert str(fault) == (
        "writing a file: No space left on device (errno 28); free space on that disk, or write the output "
        "to another one"
    )
    assert str(storage_error(OSError(errno.ENOSPC, "No space left on device", "out/x.arrow"))).startswith(
        "out/x.arrow: No space left on device (errno 28)"
    )
    # safetensors and torch report the OS error in text only, raised from inside a stage's save
    library = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    fault = storage_error(library, where="writing into out (training.output_dir)")
    assert str(fault).startswith("writing into out (training.output_dir): No space left on device (errno 28)")
    assert storage_error(ValueError("os error 2: no such file")) is None  # not a storage fault
