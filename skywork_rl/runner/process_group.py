"""Ending a multi-process run: destroy the process group and join its threads while Python is alive.

Why this exists (issue #14.6, "terminate called without an active exception" after both ranks
finished): gloo runs each collective on one of the process group's worker threads, and that thread
drops its reference to the finished collective, with its input and output tensors, a moment
*after* the caller has been told the collective is done. When the caller has already let go of
those tensors, the worker's reference is the last one and freeing the tensors' Python objects
takes the GIL. If the main thread has meanwhile reached interpreter shutdown, CPython (3.11 here)
ends the worker with `pthread_exit`; the unwinding runs into the noexcept tensor destructor and
calls `std::terminate`: SIGABRT, exit code -6, after everything was saved. It happens when the
worker waits to be scheduled, so more on a loaded machine (every abort caught here was on rank 0;
stack of one: `ProcessGroupGloo::runLoop` ->
`~AsyncAllgatherWork` -> `TensorImpl::decref_pyobject` -> `take_gil` -> `PyThread_exit_thread`
-> `_Unwind_ForcedUnwind` -> `std::terminate`, main thread in `Py_FinalizeEx`).

`torch.distributed.destroy_process_group()` alone (what `Trainer.end()` /
`Accelerator.end_training()` call) does not prevent it: it only unregisters the group, and gloo
joins its worker threads in the group's destructor, which runs when the last reference goes. A
trainer's DDP model holds one, so with the trainer still alive the threads outlive the call and
the race stays. Freed in the right order, the destructor runs here, with the GIL released, and
waits for each worker to finish its last collective: nothing is left for interpreter shutdown.
"""

from __future__ import annotations

import gc
import inspect
import logging
import sys
from pathlib import Path

logger = logging.getLogger("skywork_rl")

# Linux names of the communication threads a process group starts: gloo's workers and its TCP
# event loop, NCCL's watchdog and heartbeat monitor. They all end when their group is destroyed.
COMMUNICATION_THREAD_PREFIXES = ("pt_gloo", "gloo_", "pt_nccl")


def communication_threads() -> list[str]:
    """Names of this process's live process-group threads (empty where /proc is not available)."""
    names = []
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the thread ended while we looked
            continue
        if name.startswith(COMMUNICATION_THREAD_PREFIXES):
            names.append(name)
    return sorted(names)


def close_process_group() -> list[str]:
    """Destroy the default process group (and every group made from it) and join their threads.

    Call it last in a process, once the trainer and models are out of scope: a no-op when no group
    was initialized. Returns the communication threads still alive afterwards, empty on success;
    when some survive, something still holds a group and the exit may abort, which is logged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return []
    _release_deepspeed_default_group()
    # A trainer sits in reference cycles (callbacks, accelerator, model hooks), so the DDP model and
    # its group reference outlive the scope that made them until a collection: collect first, so
    # that the registry emptied by `destroy_process_group` holds the last reference.
    gc.collect()
    dist.destroy_process_group()
    alive = communication_threads()
    if not alive:
        logger.info("process group closed: its communication threads are joined")
    else:
        logger.warning(
            "the process group was destroyed but %d of its threads are still running (%s): an object "
            "alive at exit still holds a group (a trainer or model kept in a global; DeepSpeed's engine "
            "and groups on gloo). If one of them is still finishing a collective when Python shuts "
            "down, the process aborts with 'terminate called without an active exception'",
            len(alive),
            ", ".join(alive),
        )
    return alive


def _release_deepspeed_default_group() -> None:
    """Drop the reference DeepSpeed's `TorchBackend` keeps to the default group from import time.

    DeepSpeed (0.19) declares `barrier(self, group=torch.distributed.GroupMember.WORLD, ...)` and
    `monitored_barrier` likewise: the default is evaluated when `deepspeed.comm` is imported, and
    accelerate imports it after the group exists (`extract_model_from_parallel`, in every
    `Trainer.__init__` when DeepSpeed is installed), so the function defaults hold the live group
    for the life of the process and its threads are never joined. Both functions map None to the
    current default group, so None is the same default without the reference.
    """
    import torch.distributed as dist

    backend = getattr(sys.modules.get("deepspeed.comm.torch"), "TorchBackend", None)
    for attribute in vars(backend).values() if backend is not None else ():
        function = inspect.unwrap(attribute) if callable(attribute) else None
        defaults = getattr(function, "__defaults__", None) or ()
        if any(isinstance(value, dist.ProcessGroup) for value in defaults):
            function.__defaults__ = tuple(None if isinstance(v, dist.ProcessGroup) else v for v in defaults)
