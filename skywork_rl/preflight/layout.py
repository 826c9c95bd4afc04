"""Where a stage runs, for `skywork-rl preflight`: the hardware and the accelerate config's layout.

The hardware comes from flags (`--gpus 8 --gpu-memory 80GB --nodes 4 --host-memory 1TB --disk 8TB`)
or from this machine when it has GPUs. With `--gpus` the world is gpus x nodes processes, whatever
`num_processes` the accelerate config says (a multi-node launch overrides it on the command line);
without, the config's `num_processes` is used. The config's DeepSpeed section (inline, or its
`deepspeed_config_file`) gives the ZeRO stage and offloads; FSDP is counted as ZeRO-3 (FULL_SHARD)
or ZeRO-2 (SHARD_GRAD_OP).

On a machine with GPUs (the guard `skywork-rl stage` and `run` run before training, or `preflight`
without --gpus) the hardware is this machine's (`detected`) and the world is what the launch starts:
the accelerate config's `num_processes` or `--num_processes`, or, inside `accelerate launch`, its
WORLD_SIZE and DeepSpeed settings. $SKYWORK_RL_PREFLIGHT_GPUS (e.g. `8x80GB`) states this machine's
GPUs instead of asking torch: it is for tests, which run where no GPU is, and says so in the table.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skywork_rl.errors import SkyworkError
from skywork_rl.preflight import memory as me

GPUS_ENV = "SKYWORK_RL_PREFLIGHT_GPUS"  # for tests: "COUNTxSIZE" stands for this machine's GPUs


@dataclass(frozen=True)
class Hardware:
    """What the stages run on; None means unknown (the rows that need it are unchecked)."""

    gpus_per_node: int | None = None
    gpu_memory: int | None = None
    nodes: int = 1
    host_memory: int | None = None
    disk: int | None = None
    source: str = "flags"
    detected: bool = False  # this machine's GPUs: the launch's own process count is the world

    def describe(self) -> str:
        if self.gpus_per_node is None:
            return f"hardware: unknown ({self.source}); memory rows are unchecked"
        host = me.gb(self.host_memory) if self.host_memory else "unknown (--host-memory)"
        disk = me.gb(self.disk) if self.disk else "unknown (--disk)"
        return (
            f"hardware: {self.nodes} node(s) x {self.gpus_per_node} GPUs x {me.gb(self.gpu_memory or 0)}, "
            f"host {host} per node, disk {disk} ({self.source})"
        )


def hardware_from_flags(
    gpus: int | None,
    gpu_memory: str | None,
    nodes: int = 1,
    host_memory: str | None = None,
    disk: str | None = None,
) -> Hardware | None:
    """Hardware from the CLI flags; without --gpus, this machine's GPUs (or None when it has none)."""
    host = me.parse_size(host_memory) if host_memory else None
    space = me.parse_size(disk) if disk else None
    if gpus is None and gpu_memory is None:
        here = detect_hardware()
        if here is None:
            return None
        return Hardware(
            here.gpus_per_node,
            here.gpu_memory,
            nodes,
            host or here.host_memory,
            space or free_disk(),
            here.source,
            detected=True,
        )
    if gpus is None or gpu_memory is None:
        raise SkyworkError("--gpus and --gpu-memory go together (e.g. --gpus 8 --gpu-memory 80GB)")
    return Hardware(gpus, me.parse_size(gpu_memory), nodes, host, space, "flags")


def detect_hardware() -> Hardware | None:
    """This machine's GPUs (torch.cuda, or $SKYWORK_RL_PREFLIGHT_GPUS) and RAM; None without GPUs."""
    stated = os.environ.get(GPUS_ENV, "").strip()
    if stated:
        count, _, size = stated.lower().partition("x")
        try:
            gpus, memory = int(count), me.parse_size(size)
        except ValueError:
            raise SkyworkError(f"${GPUS_ENV}={stated!r}: expected COUNTxSIZE, e.g. 8x80GB") from None
        source = f"${GPUS_ENV}={stated}: stated for tests, not detected"
        return Hardware(gpus, memory, 1, None, None, source, detected=True)
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        count, memory = torch.cuda.device_count(), torch.cuda.get_device_properties(0).total_memory
    except Exception:  # a broken CUDA setup is no hardware to check against
        return None
    host = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                host = int(line.split()[1]) * 1024
    return Hardware(
        count, memory, 1, host, None, f"this machine: {count} GPUs of {me.gb(memory)}", detected=True
    )


def free_disk(path: str = "outputs") -> int:
    """Free bytes on the filesystem `path` (or its nearest existing parent) is on."""
    folder = Path(path).resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def launched_layout() -> dict[str, Any] | None:
    """Inside `accelerate launch`: the launch's layout as an accelerate config (from its environment)."""
    if "WORLD_SIZE" not in os.environ or "ACCELERATE_MIXED_PRECISION" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_WORLD_SIZE") or world)
    acc: dict[str, Any] = {"num_processes": world, "num_machines": max(world // max(local, 1), 1)}
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        acc["distributed_type"] = "DEEPSPEED"
        ds: dict[str, Any] = {}
        if os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"):
            ds["deepspeed_config_file"] = os.environ["ACCELERATE_DEEPSPEED_CONFIG_FILE"]
        for key in (
            "zero_stage",
            "offload_optimizer_device",
            "offload_param_device",
            "zero3_save_16bit_model",
        ):
            value = os.environ.get(f"ACCELERATE_DEEPSPEED_{key.upper()}")
            if value is not None:
                ds[key] = value.lower() == "true" if key == "zero3_save_16bit_model" else value
        acc["deepspeed_config"] = ds
    elif os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        strategy = os.environ.get("FSDP_SHARDING_STRATEGY", "FULL_SHARD")
        acc.update(distributed_type="FSDP", fsdp_config={"fsdp_sharding_strategy": strategy})
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true":
        acc["use_cpu"] = True
    return acc


def read_layout(
    path: Path | None, hw: Hardware, num_processes: int | None, launched: dict[str, Any] | None = None
) -> tuple[me.Sharding, int, bool]:
    """(sharding, processes per node, use_cpu) of a training stage launched with `path` (or, inside a
    launch, with the `launched` layout)."""
    acc: dict[str, Any] = {}
    if launched is not None:
        acc, path, num_processes = launched, None, None
    elif path is not None:
        if not path.is_file():
            raise SkyworkError(
                f"accelerate config {path}: no such file (--accelerate-config / accelerate_config:)"
            )
        acc = yaml.safe_load(path.read_text()) or {}
    machines = int(acc.get("num_machines") or 1)
    procs = int(num_processes or acc.get("num_processes") or 1)
    if hw.gpus_per_node and not hw.detected:
        per_node, world = hw.gpus_per_node, hw.gpus_per_node * hw.nodes
    else:
        per_node, world = max(procs // machines, 1), procs
    dist = str(acc.get("distributed_type", "NO")).upper()
    if dist == "DEEPSPEED":
        ds = acc.get("deepspeed_config") or {}
        if ds.get("deepspeed_config_file"):
            file = Path(ds["deepspeed_config_file"])
            ds = _deepspeed_file(file if file.is_absolute() or path is None else path.parent / file)
        stage = int(ds.get("zero_stage", 2))
        off_opt = str(ds.get("offload_optimizer_device", "none")).lower() in ("cpu", "nvme")
        off_par = stage == 3 and str(ds.get("offload_param_device", "none")).lower() in ("cpu", "nvme")
        label = f"DeepSpeed ZeRO-{stage}" + " + optimizer offload" * off_opt + " + param offload" * off_par
        save16 = bool(ds.get("zero3_save_16bit_model", stage < 3))
        sharding = me.Sharding(label, world, stage, True, off_opt, off_par, save16)
    elif dist == "FSDP":
        strategy = str((acc.get("fsdp_config") or {}).get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
        stage = 3 if "FULL" in strategy else 2
        sharding = me.Sharding(f"FSDP {strategy} (counted as ZeRO-{stage})", world, stage, True)
    else:
        sharding = me.Sharding("DDP" if world > 1 else "one process", world)
    return sharding, per_node, bool(acc.get("use_cpu"))


def _deepspeed_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SkyworkError(f"deepspeed_config_file {path}: no such file")
    zero = json.loads(path.read_text()).get("zero_optimization") or {}
    return {
        "zero_stage": zero.get("stage", 0),
        "offload_optimizer_device": (zero.get("offload_optimizer") or {}).get("device", "none"),
        "offload_param_device": (zero.get("offload_param") or {}).get("device", "none"),
        "zero3_save_16bit_model": zero.get("stage3_gather_16bit_weights_on_model_save", False),
    }
