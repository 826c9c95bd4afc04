"""The multi-node launch recipes/README.md documents, rehearsed on one machine as two nodes of one process.

The command is the documented one (`accelerate launch --config_file recipes/accelerate/multi_node_zero3.yaml
--machine_rank R --main_process_ip IP --main_process_port P -m skywork_rl.cli stage ...`), run twice on
127.0.0.1 with machine_rank 0 and 1, `--num_machines 2 --num_processes 2`, fp32 (bf16 is a GPU setting),
both nodes writing into one output folder as on a shared filesystem. The reference is the same stage
on one node with 2 processes under the same ZeRO stage (recipes/accelerate/zero3.yaml).

Every write a Python process makes under the output folder is recorded by an audit hook
(`sitecustomize`, loaded by each process): a file written by two processes is written twice. Files
torch and safetensors write from C++ are not seen by the hook; those are per-rank by name (DeepSpeed's
shards, rng states, the buffer) or the model, whose single copy is checked by loading it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pytest
from helpers import accelerate_command, launch_env
from safetensors.torch import load_file

from skywork_rl.data.loading import DATASETS_CACHE

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "recipes" / "accelerate"
MULTI_NODE = ACCELERATE / "multi_node_zero3.yaml"
# A launch that takes longer than this hangs: about 1.5 min each on 2 loaded cores, plus DeepSpeed's
# first build of its CPU comm op (minutes on a loaded machine; processes wait on its build lock).
RUN_TIMEOUT = 600
# Measured: the two-node runs end on the single-node run's weights bitwise (same global ranks, seeds,
# data order and reduction order over gloo).
TOLERANCE = 0.0

AUDIT_SITECUSTOMIZE = """
import os, sys
_watch = os.path.realpath(os.environ["AUDIT_WATCH"])
_log = os.open(os.path.join(os.environ["AUDIT_DIR"], f"{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
_rank = os.environ.get("RANK", "-")
os.write(_log, f"start {_rank} {' '.join(sys.argv)[:200]}\\n".encode())
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def _record(path):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, str):
        path = os.path.realpath(path)
        if path.startswith(_watch + os.sep):
            os.write(_log, f"write {_rank} {path}\\n".encode())

def _hook(event, args):
    if event == "open" and isinstance(args[2], int) and args[2] & _WRITE:
        _record(args[0])
    elif event == "open" and isinstance(args[1], str) and set(args[1]) & set("wax+"):
        _record(args[0])
    elif event in ("os.rename", "shutil.copyfile", "shutil.copytree"):
        _record(args[1])

sys.addaudithook(_hook)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, out: Path) -> dict[str, str]:
    site = tmp_path / "audit_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT_SITECUSTOMIZE)
    audit = tmp_path / "audit"
    audit.mkdir(exist_ok=True)
    # tests/stages: the deterministic reward of the kill-and-resume tests, importable by the processes.
    path = os.pathsep.join([str(site), str(REPO), str(REPO / "tests" / "stages")])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, AUDIT_DIR=str(audit), AUDIT_WATCH=str(out))


def _stage_command(stage: str, recipe: str, out: Path, args: list[str]) -> list[str]:
    return [
        "-m",
        "skywork_rl.cli",
        "stage",
        stage,
        "--config",
        str(REPO / "recipes" / "tiny" / recipe),
        f"--training.output_dir={out}",
        *args,
    ]


def _node_command(rank: int, port: int, stage_command: list[str]) -> list[str]:
    """The documented multi-node command for one node, scaled to 2 nodes of 1 CPU process."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(MULTI_NODE),
        "--num_machines",
        "2",
        "--num_processes",
        "2",
        "--machine_rank",
        str(rank),
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(port),
        "--mixed_precision",
        "no",
        *stage_command,
    ]


def _start_nodes(tmp_path: Path, out: Path, stage_command: list[str], tag: str) -> list[subprocess.Popen]:
    port, env = _free_port(), _env(tmp_path, out)
    nodes = []
    for rank in (0, 1):
        log = open(tmp_path / f"{tag}-node{rank}.log", "w")  # noqa: SIM115 (closed with the process)
        nodes.append(
            subprocess.Popen(
                _node_command(rank, port, stage_command),
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # each node its own session, as on two machines
            )
        )
    return nodes


def _wait(nodes: list[subprocess.Popen], tmp_path: Path, tag: str, timeout: float = RUN_TIMEOUT) -> list[int]:
    """Exit codes of both nodes; a node still running after `timeout` is a hang: kill both and fail."""
    deadline = time.monotonic() + timeout
    try:
        return [node.wait(timeout=max(1.0, deadline - time.monotonic())) for node in nodes]
    except subprocess.TimeoutExpired:
        for node in nodes:
            _kill_node(node)
        logs = "\n".join((tmp_path / f"{tag}-node{r}.log").read_text()[-3000:] for r in (0, 1))
        pytest.fail(f"the two nodes did not stop within {timeout:.0f} s (a hang):\n{logs}")


def _kill_node(node: subprocess.Popen) -> None:
    """SIGKILL a node's launcher and every process under it, as a machine going down would."""
    if node.poll() is not None:
        return
    try:
        members = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    node.wait()


def _run_two_nodes(tmp_path: Path, out: Path, stage_command: list[str], tag: str) -> None:
    codes = _wait(_start_nodes(tmp_path, out, stage_command, tag), tmp_path, tag)
    logs = "\n".join((tmp_path / f"{tag}-node{r}.log").read_text()[-3000:] for r in (0, 1))
    assert codes == [0, 0], logs


def _run_one_node(tmp_path: Path, out: Path, stage_command: list[str]) -> None:
    """The reference: one node, 2 processes, the single-node ZeRO-3 config (zero3.yaml)."""
    command = accelerate_command("zero3.yaml", *stage_command)
    env = launch_env(REPO / "tests" / "stages")
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def max_weight_difference(a: Path, b: Path) -> float:
    left, right = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert left.keys() == right.keys()
    return max((left[k].double() - right[k].double()).abs().max().item() for k in left)


def training_moved(initial: Path, trained: Path) -> bool:
    """Whether the trained folder's weights differ from the initial model's (loaded, as their files
    name the parameters differently: the tiny model's original layout vs the trainer's save)."""
    from transformers import AutoModelForImageTextToText

    before = dict(AutoModelForImageTextToText.from_pretrained(initial).named_parameters())
    after = dict(AutoModelForImageTextToText.from_pretrained(trained).named_parameters())
    return before.keys() == after.keys() and any(not before[k].equal(after[k]) for k in before)


def _writers(tmp_path: Path) -> tuple[dict[str, set[int]], dict[int, str]]:
    """(path -> pids of the processes that wrote it, pid -> global rank) from the audit logs."""
    writers: dict[str, set[int]] = defaultdict(set)
    ranks: dict[int, str] = {}
    for log in (tmp_path / "audit").glob("*.log"):
        pid = int(log.stem)
        for line in log.read_text().splitlines():
            kind, rank, rest = line.split(" ", 2)
            ranks[pid] = rank
            if kind == "write":
                writers[rest].add(pid)
    return writers, ranks


def _assert_every_output_written_once(tmp_path: Path, out: Path) -> None:
    writers, ranks = _writers(tmp_path)
    stage_ranks = {rank for pid, rank in ranks.items() if rank != "-"}
    assert stage_ranks == {"0", "1"}, ranks  # both nodes' stage processes were audited
    assert writers, "the audit saw no write at all"
    twice = {path: sorted(ranks[p] for p in pids) for path, pids in writers.items() if len(pids) > 1}
    assert not twice, f"written by more than one process: {twice}"
    # Node 1 writes only its own rank's state (the SSB buffer, GRPO's stored generation), by name, and
    # its own datasets mirror and cache, in the node's sub-folder of the stage's datasets cache.
    node1 = sorted(path for path, pids in writers.items() if any(ranks[p] == "1" for p in pids))
    own_cache = (out / DATASETS_CACHE / "node1").resolve()
    assert all("_rank1." in Path(path).name or Path(path).is_relative_to(own_cache) for path in node1), (
        f"node 1 wrote shared outputs: {node1}"
    )
    for name in ("stage.json", ".stage_complete", "model.safetensors"):
        assert (out / name).exists(), name
    assert {ranks[p] for p in writers[str((out / "stage.json").resolve())]} == {"0"}


def _assert_launch_recorded(out: Path, config: Path, machines: int) -> None:
    record = json.loads((out / "stage.json").read_text())
    # 2 processes as given on the command line, not the config file's 32 (or 8): what really ran.
    assert record["launch"] == {
        "accelerate_config": str(config),
        "zero_stage": 3,
        "processes": 2,
        "machines": machines,
        "machine_rank": 0,
    }


SFT_STEPS = 8


def _sft_args(model: Path, data: Path) -> list[str]:
    return [
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        f"--training.max_steps={SFT_STEPS}",
        "--training.save_steps=2",
        "--training.save_total_limit=null",
        "--training.logging_steps=1",
        "--training.per_device_train_batch_size=4",
        "--training.report_to=[]",
    ]


@pytest.fixture(scope="module")
def single_node_sft(tiny_internvl, synthetic_dataset_dir, tmp_path_factory) -> Path:
    """The SFT stage on one node: 2 processes under zero3.yaml."""
    tmp = tmp_path_factory.mktemp("one-node-sft")
    out = tmp / "out"
    _run_one_node(
        tmp, out, _stage_command("sft", "sft.yaml", out, _sft_args(tiny_internvl, synthetic_dataset_dir))
    )
    return out


@pytest.mark.slow
def test_two_process_zero3_run_records_its_launch(single_node_sft):
    _assert_launch_recorded(single_node_sft, ACCELERATE / "zero3.yaml", machines=1)


@pytest.mark.slow
def test_sft_on_two_nodes_ends_on_the_single_node_weights_writing_each_output_once(
    single_node_sft, tiny_internvl, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "shared" / "sft"
    command = _stage_command("sft", "sft.yaml", out, _sft_args(tiny_internvl, synthetic_dataset_dir))
    _run_two_nodes(tmp_path, out, command, "sft")

    assert training_moved(tiny_internvl, out)
    assert max_weight_difference(single_node_sft, out) <= TOLERANCE
    _assert_every_output_written_once(tmp_path, out)
    _assert_launch_recorded(out, MULTI_NODE, machines=2)
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "complete"
    shards = sorted(p.name for p in (out / f"checkpoint-{SFT_STEPS}" / f"global_step{SFT_STEPS}").iterdir())
    assert shards == [
        f"zero_pp_rank_{r}_mp_rank_00_{kind}_states.pt" for r in (0, 1) for kind in ("model", "optim")
    ]


def _grpo_args(model: Path, data: Path) -> list[str]:
    return [
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        "--rewards.reward_funcs=[test_kill_and_resume:half_informative]",
        "--rewards.reward_weights=[1.0]",
        "--data.max_train_samples=12",
        "--training.per_device_train_batch_size=6",
        "--training.num_generations=3",
        "--training.max_completion_length=8",
        "--training.max_steps=3",
        "--training.save_steps=3",
        "--training.logging_steps=1",
        "--training.ssb_max_fill_ratio=1.0",
        "--training.report_to=[]",
    ]


@pytest.mark.slow
def test_grpo_with_ssb_on_two_nodes_ends_on_the_single_node_weights_writing_each_output_once(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    one, two = tmp_path / "one-node" / "grpo", tmp_path / "shared" / "grpo"
    args = _grpo_args(tiny_internvl, synthetic_dataset_dir)
    _run_one_node(tmp_path / "one-node", one, _stage_command("grpo", "grpo.yaml", one, args))
    _run_two_nodes(tmp_path, two, _stage_command("grpo", "grpo.yaml", two, args), "grpo")

    assert training_moved(tiny_internvl, two)
    assert max_weight_difference(one, two) <= TOLERANCE
    _assert_every_output_written_once(tmp_path, two)
    history = {
        name: json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
        for name, out in (("one", one), ("two", two))
    }
    logged = {name: [h for h in logs if "loss" in h] for name, logs in history.items()}
    assert sum(h.get("ssb/buffer_size", 0) for h in logged["two"]) > 0  # the buffer took part
    for key in ("loss", "reward", "ssb/injected", "ssb/buffer_size", "frac_reward_zero_std"):
        assert [h.get(key) for h in logged["one"]] == [h.get(key) for h in logged["two"]], key
    for rank in (0, 1):
        assert (two / "checkpoint-3" / f"ssb_buffer_rank{rank}.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("what", ["launcher", "node"])
def test_a_killed_node_stops_both_records_failed_and_resumes_to_the_uninterrupted_weights(
    single_node_sft, tiny_internvl, synthetic_dataset_dir, tmp_path, what
):
    """Node 1 is killed after the first checkpoint: its launcher alone (SIGKILL; the stage process
    under it must go with it, not train on), or its launcher and stage process (a machine down).
    Node 0 must notice the dead peer and stop; the stage is recorded failed; the same two commands run
    again resume from the last complete checkpoint and end on the uninterrupted run's weights."""
    out = tmp_path / "shared" / "sft"
    command = _stage_command("sft", "sft.yaml", out, _sft_args(tiny_internvl, synthetic_dataset_dir))
    nodes = _start_nodes(tmp_path, out, command, "killed")
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (out / "checkpoint-2" / "trainer_state.json").exists():
            assert time.monotonic() < deadline and all(n.poll() is None for n in nodes), "no checkpoint-2"
            time.sleep(0.1)
        if what == "launcher":
            nodes[1].kill()
            nodes[1].wait()
        else:
            _kill_node(nodes[1])
        # Bounded: a survivor that does not notice its dead peer fails the test here.
        code = _wait(nodes[:1], tmp_path, "killed", timeout=180)[0]
    finally:
        for node in nodes:
            _kill_node(node)
    assert code != 0
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "failed", record.get("error")
    assert not (out / "model.safetensors").exists()  # it stopped before the end
    assert not (out / f"checkpoint-{SFT_STEPS}").exists()
    # Node 1's stage process is gone too (no training on in the background).
    time.sleep(2)
    survivors = [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        if str(out) in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE
    ]
    for survivor in survivors:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()
    assert not survivors, f"processes of the killed run still running: {survivors}"

    _run_two_nodes(tmp_path, out, command, "resumed")  # resume_from_checkpoint: auto
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "complete"
    state = json.loads((out / f"checkpoint-{SFT_STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == SFT_STEPS
    assert max_weight_difference(single_node_sft, out) <= TOLERANCE
