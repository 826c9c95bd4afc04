"""`close_process_group` ends a run's process group and joins its communication threads (issue #14.6)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from skywork_rl.runner.process_group import close_process_group, communication_threads


def test_without_a_process_group_closing_is_a_no_op():
    assert not dist.is_initialized()
    assert close_process_group() == []


def test_a_one_process_gloo_group_is_destroyed_and_its_threads_joined():
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        tensor = torch.ones(2)
        dist.all_reduce(tensor)  # a collective runs on one of gloo's worker threads
        assert tensor.tolist() == [1.0, 1.0]
        assert communication_threads(), "gloo started no communication thread to join"
        assert close_process_group() == []
        assert not dist.is_initialized()
        assert communication_threads() == []
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
