"""Decoding under ZeRO-3/FSDP with several processes: every forward pass is a collective, so a rank
whose rows have all finished must keep stepping while any other rank still decodes. Checked with
two real processes joined by a gloo process group on loopback."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engines.hf import _keep_decoding, _synced_decoding


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # a broken sync shows as a collective timing out, not as a test that hangs
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    try:
        cpu = torch.device("cpu")
        # rank 0 finished, rank 1 still decoding: both go on; both finished: both stop
        mixed = _keep_decoding(local_done=(rank == 0), synced=True, device=cpu)
        done = _keep_decoding(local_done=True, synced=True, device=cpu)
        running = _keep_decoding(local_done=False, synced=True, device=cpu)
        # a plain model in a process group is not sharded: no sync needed
        synced = _synced_decoding(torch.nn.Linear(2, 2))
        # a decoding loop shaped like HFEngine's: rank 0 has 2 steps of work, rank 1 has 5
        steps = 0
        for step in range(10):
            steps += 1
            if not _keep_decoding(step + 1 >= (2 if rank == 0 else 5), True, cpu):
                break
        results[rank] = (mixed, done, running, synced, steps)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_finished_ranks_keep_stepping_until_every_rank_is_done():
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
    assert dict(results) == {0: (True, False, True, False, 5), 1: (True, False, True, False, 5)}


def test_unsynced_decoding_stops_when_this_rank_is_done():
    cpu = torch.device("cpu")
    assert _keep_decoding(local_done=False, synced=False, device=cpu) is True
    assert _keep_decoding(local_done=True, synced=False, device=cpu) is False
    assert _synced_decoding(torch.nn.Linear(2, 2)) is False  # no process group
