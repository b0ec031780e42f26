"""Launch checks, the split of a step between processes, and the gradient sum over processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from emlab.config import TrainConfig
from emlab.records import Example
from emlab.train import distributed, finetune
from emlab.train.distributed import Launch, LaunchError, check_split, device_for, launch_from_env

TORCHRUN = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}  # fmt: skip


def test_plain_run_is_one_process() -> None:
    assert launch_from_env({}) == Launch()
    assert not launch_from_env({"WORLD_SIZE": "1"}).distributed


def test_torchrun_variables_are_read() -> None:
    launch = launch_from_env(TORCHRUN)
    assert launch == Launch(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert launch.distributed and not launch.is_main


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT are not"),
        ({**TORCHRUN, "RANK": "x"}, "RANK='x' is not an integer"),
        ({**TORCHRUN, "RANK": "4"}, "inconsistent launch variables"),
        ({**TORCHRUN, "ACCELERATE_USE_FSDP": "true"}, "FSDP is not supported"),
        ({**TORCHRUN, "ACCELERATE_USE_DEEPSPEED": "True"}, "DeepSpeed is not supported"),
        # `accelerate launch --cpu --num_processes 2` without mpirun: one process, N asked for
        ({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"}, "starts a single process"),
    ],
)
def test_bad_launches_are_refused(env: dict[str, str], says: str) -> None:
    with pytest.raises(LaunchError, match=says):
        launch_from_env(env)


def test_each_process_takes_its_own_gpu() -> None:
    launch = launch_from_env(TORCHRUN)
    assert device_for(launch, "cuda", 2) == "cuda:1"
    assert device_for(launch, "cpu", 2) == "cpu"
    assert device_for(Launch(), "cuda:3", 8) == "cuda:3"  # one process: as requested
    with pytest.raises(LaunchError, match="2 processes on this machine but 1 GPU"):
        device_for(launch, "cuda", 1)
    with pytest.raises(LaunchError, match="EMLAB_DEVICE=cuda:0 would put all 4 processes"):
        device_for(launch, "cuda:0", 2)


def test_every_process_must_get_a_micro_batch() -> None:
    four = Launch(rank=0, world_size=4, local_world_size=4)
    check_split(four, batch_size=16, micro_batch_size=4, n_examples=100)
    check_split(Launch(), batch_size=8, micro_batch_size=8, n_examples=100)
    with pytest.raises(LaunchError, match="micro_batch_size to at most 4"):
        check_split(four, batch_size=16, micro_batch_size=8, n_examples=100)
    # a dataset smaller than the batch makes steps of fewer micro-batches
    with pytest.raises(LaunchError, match="micro_batch_size to at most 1"):
        check_split(four, batch_size=16, micro_batch_size=2, n_examples=6)


def test_share_splits_a_step_disjointly() -> None:
    step = [[i] for i in range(7)]
    shares = [distributed.share(step, Launch(rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for s in shares for i, _ in s) == list(range(7))
    assert [len(s) for s in shares] == [3, 2, 2]
    assert all(mb == [i] for s in shares for i, mb in s)


def test_finetune_refuses_a_bad_split_before_training(
    tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in {**TORCHRUN, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EMLAB_DEVICE", "cpu")
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    ex = [Example(messages=chat)] * 8
    cfg = TrainConfig(batch_size=8, micro_batch_size=8, max_steps=1)
    with pytest.raises(LaunchError, match="micro_batch_size to at most 4"):
        finetune(tiny_model, ex, cfg, 0, tmp_path / "out", tmp_path / "work", progress=False)
    assert not (tmp_path / "out").exists() and not dist.is_initialized()


def _sum_worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    distributed.BUCKET_ELEMENTS = 5  # several buckets, a tensor alone in its own, a dtype change
    tensors = [
        torch.full((2,), rank + 1.0),
        torch.full((3,), 10.0 * (rank + 1)),
        torch.full((2, 4), 100.0 * (rank + 1)),
        torch.full((1,), rank + 0.5, dtype=torch.float64),
        torch.full((2,), rank + 2.0),
    ]
    distributed.all_reduce_sum_(tensors)
    if rank == 1:
        torch.save(tensors, out)
    dist.destroy_process_group()


def test_gradient_sum_over_two_processes(tmp_path: Path) -> None:
    # fork: the workers need no fresh interpreter, which would take seconds to import torch
    args = (str(tmp_path / "store"), str(tmp_path / "out.pt"))
    mp.start_processes(_sum_worker, args=args, nprocs=2, start_method="fork")
    got = torch.load(tmp_path / "out.pt")
    assert [t.tolist() for t in got] == [
        [3.0, 3.0], [30.0] * 3, [[300.0] * 4] * 2, [2.0], [5.0, 5.0],
    ]  # fmt: skip
    assert got[3].dtype == torch.float64
