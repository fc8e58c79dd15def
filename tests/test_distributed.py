"""torch.distributed on CPU (gloo, 2 processes): global negatives, global BN, sharded features.

The exactness tests run the same weights on the same global batch as one process x N and as
2 ranks x N/2 (DistributedDataParallel, the trainer's set-up) and compare the loss and every
parameter's gradient. The CLI tests launch ``torchrun`` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from simclr import distributed
from simclr.data.images import ArrayImages
from simclr.eval.features import extract_features
from simclr.losses import NTXentLoss, nt_xent
from simclr.models import build_model
from simclr.models.norm import GlobalBatchNorm, convert_global_bn

N, SIZE, TAU = 8, 16, 0.5


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    # width 0.25, CIFAR stem: BN in every block and in the head (BatchNorm1d)
    return build_model("resnet18", 0.25, "cifar", SIZE).train()


def _views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(N, 3, SIZE, SIZE, generator=g), torch.rand(N, 3, SIZE, SIZE, generator=g)


def _one_process() -> dict[str, torch.Tensor]:
    model = _model()
    x1, x2 = _views()
    _, z = model(torch.cat([x1, x2]))
    loss, _ = nt_xent(*z.chunk(2), TAU)
    loss.backward()
    out = {"loss": loss.detach()}
    out.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})
    out.update({f"buf.{k}": b.clone() for k, b in model.named_buffers()})
    return out


def _rank_worker(rank: int, world: int, store: str, out_dir: str, gather: bool, global_bn: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        model = _model()
        if global_bn:
            model = convert_global_bn(model)
        ddp = distributed.wrap_ddp(model, torch.device("cpu"), sync_buffers=not global_bn)
        x1, x2 = _views()
        n = N // world
        local = slice(rank * n, (rank + 1) * n)
        _, z = ddp(torch.cat([x1[local], x2[local]]))
        loss, _ = nt_xent(*z.chunk(2), TAU, gather=gather)
        loss.backward()
        out = {"loss": loss.detach()}
        out.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})
        out.update({f"buf.{k}": b.clone() for k, b in model.named_buffers()})
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _two_ranks(tmp_path: Path, gather: bool = True, global_bn: bool = True) -> list[dict[str, torch.Tensor]]:
    store = tmp_path / "store"
    mp.spawn(_rank_worker, args=(2, str(store), str(tmp_path), gather, global_bn), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def test_two_ranks_equal_one_process(tmp_path: Path) -> None:
    ref = _one_process()
    ranks = _two_ranks(tmp_path)
    for out in ranks:
        assert _rel(out["loss"], ref["loss"]) < 1e-5  # every rank reports the global L
        for key, value in ref.items():
            if key.startswith("grad."):
                assert _rel(out[key], value) < 1e-5, key
            elif key.startswith("buf.") and value.is_floating_point():
                assert _rel(out[key], value) < 1e-5, key  # global BN running statistics
    assert any(k.startswith("grad.") and "bn" in k for k in ref)


def test_without_the_gather_the_gradients_differ(tmp_path: Path) -> None:
    """The same launch with each rank's loss kept to its own half: a different objective."""
    ref = _one_process()
    ranks = _two_ranks(tmp_path, gather=False)
    assert _rel(ranks[0]["loss"], ref["loss"]) > 1e-2
    worst = max(_rel(ranks[0][k], v) for k, v in ref.items() if k.startswith("grad."))
    assert worst > 1e-2


def test_without_global_bn_the_gradients_differ(tmp_path: Path) -> None:
    ref = _one_process()
    ranks = _two_ranks(tmp_path, global_bn=False)
    worst = max(_rel(ranks[0][k], v) for k, v in ref.items() if k.startswith("grad."))
    assert worst > 1e-3


def test_gather_with_grad_and_global_bn_are_identity_in_one_process() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather_with_grad(x) is x
    bn = convert_global_bn(torch.nn.Sequential(torch.nn.BatchNorm1d(3)))
    ref = torch.nn.BatchNorm1d(3)
    assert isinstance(bn[0], GlobalBatchNorm)
    assert torch.allclose(bn(x), ref(x))
    assert torch.allclose(bn[0].running_var, ref.running_var)


def _float64_worker(rank: int, world: int, store: str, out_dir: str, branches: str = "gloo") -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    if branches == "nccl":  # the code paths taken under nccl (all_gather_into_tensor, reduce_scatter_tensor), on gloo
        distributed.backend = lambda: "nccl"
    try:
        model = _model().double()
        model = convert_global_bn(model)
        ddp = distributed.wrap_ddp(model, torch.device("cpu"), sync_buffers=False)
        x1, x2 = (v.double() for v in _views())
        n = N // world
        local = slice(rank * n, (rank + 1) * n)
        _, z = ddp(torch.cat([x1[local], x2[local]]))
        loss = NTXentLoss(TAU)(*z.chunk(2))  # the module, with float64 embeddings
        loss.backward()
        out = {"loss": loss.detach(), **{f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()}}
        torch.save(out, Path(out_dir) / f"f64_{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("branches", ["gloo", "nccl"])
def test_two_ranks_equal_one_process_in_float64(tmp_path: Path, branches: str) -> None:
    """NTXentLoss under torch.distributed keeps float64 (its -inf fill was float32: an index_put error).
    ``nccl``: the same on gloo through the collectives the code calls under nccl (the gather's
    all_gather_into_tensor forward and reduce_scatter_tensor backward; global BN is one path for both)."""
    model = _model().double()
    x1, x2 = (v.double() for v in _views())
    _, z = model(torch.cat([x1, x2]))
    loss = NTXentLoss(TAU)(*z.chunk(2))
    loss.backward()
    mp.spawn(_float64_worker, args=(2, str(tmp_path / "store"), str(tmp_path), branches), nprocs=2, join=True)
    for r in range(2):
        out = torch.load(tmp_path / f"f64_{r}.pt")
        assert out["loss"].dtype == torch.float64 and _rel(out["loss"], loss.detach()) < 1e-12
        for k, p in model.named_parameters():
            assert out[f"grad.{k}"].dtype == torch.float64
            assert _rel(out[f"grad.{k}"], p.grad) < 1e-9, k


def _uneven_bn_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        bn = convert_global_bn(torch.nn.Sequential(torch.nn.BatchNorm1d(4)))[0].train()
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3)).double()
        bn = bn.double()
        rows = slice(0, 3) if rank == 0 else slice(3, 8)  # 3 and 5 rows: the ranks' batches differ
        xi = x[rows].clone().requires_grad_()
        y = bn(xi)
        (y * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
        torch.save({"y": y.detach(), "gx": xi.grad, "mean": bn.running_mean, "var": bn.running_var},
                   Path(out_dir) / f"bn{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_global_bn_with_batches_of_different_sizes(tmp_path: Path) -> None:
    bn = torch.nn.BatchNorm1d(4).double().train()
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3)).double().requires_grad_()
    y = bn(x)
    (y * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
    mp.spawn(_uneven_bn_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"bn{r}.pt") for r in range(2)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach())
    torch.testing.assert_close(torch.cat([p["gx"] for p in parts]), x.grad)
    for p in parts:
        torch.testing.assert_close(p["mean"], bn.running_mean)
        torch.testing.assert_close(p["var"], bn.running_var)


def _features_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.save(_features(), Path(out_dir) / f"feat{rank}.pt")
    finally:
        dist.destroy_process_group()


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    encoder = build_model("resnet18", 0.25, "cifar", SIZE).encoder
    g = torch.Generator().manual_seed(2)
    images = ArrayImages(torch.randint(0, 256, (11, 3, SIZE, SIZE), generator=g, dtype=torch.uint8),
                         torch.arange(11), [str(i) for i in range(11)])
    return extract_features(encoder, images, SIZE, torch.device("cpu"), batch_size=4)


def test_feature_extraction_is_sharded_and_reassembled_in_order(tmp_path: Path) -> None:
    h, y = _features()
    mp.spawn(_features_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        hr, yr = torch.load(tmp_path / f"feat{r}.pt")
        assert torch.equal(yr, y)  # 11 images over 2 ranks (5 + 6), back in order
        assert torch.allclose(hr, h, atol=1e-5)


# --- torchrun, end to end -------------------------------------------------------------------

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
TINY = ["--dataset", "synthetic", "--limit", "64", "--image-size", "16", "--width-multiplier", "0.25",
        "--batch-size", "16", "--device", "cpu", "--log-every", "1"]


def torchrun(*args: str, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)


def _steps(run: Path) -> list[int]:
    import json

    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line]


def test_torchrun_pretrain_writes_one_run_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = torchrun("-m", "simclr", "pretrain", "--out", str(run), "--max-steps", "3", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("dataset synthetic") == 1  # rank 0 alone logs
    assert "2 ranks (gloo) x 8 images each | global BN on" in r.stderr
    assert _steps(run) == [1, 2, 3]  # one metrics record per step: rank 0 alone writes
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.yaml", "encoder.pt",
                                                     "metrics.jsonl", "tensorboard"]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    assert not any("GlobalBatchNorm" in k for k in state["model"])  # plain BN keys: loads anywhere

    r = torchrun("-m", "simclr", "pretrain", "--out", str(run), "--resume", "--max-steps", "5", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from step 3" in r.stderr
    assert _steps(run) == [1, 2, 3, 4, 5]

    # the same run continues in one process (any world size that divides the batch)
    r = subprocess.run([sys.executable, "-m", "simclr", "pretrain", "--out", str(run), "--resume",
                        "--max-steps", "6", *TINY], capture_output=True, text=True, env=ENV, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _steps(run) == [1, 2, 3, 4, 5, 6]


def test_torchrun_time_budget_plans_and_replans_alike_on_every_rank(tmp_path: Path) -> None:
    """Each rank times its own steps; rank 0's rates are broadcast (the first plan, and the re-plan from the
    loop's rate), so every rank stops at the same step: a rank stopping on its own plan would hang the other
    in its next collective, and the launch would time out."""
    run = tmp_path / "run"
    r = torchrun("-m", "simclr", "pretrain", "--out", str(run), "--time-budget", "0.15", "--epochs", "1000", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("time budget 0.15 min:") >= 1 and r.stderr.count("measured on 5 steps") == 1  # rank 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    steps = _steps(run)
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] == saved["train"]["max_steps"]


def test_torchrun_evaluation_equals_one_process(tmp_path: Path) -> None:
    import json

    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "simclr", "pretrain", "--out", str(run), "--max-steps", "2", *TINY],
                       capture_output=True, text=True, env=ENV, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    for command in ("linear-eval", "knn"):
        args = [command, "--limit", "64", "--device", "cpu"]
        # --run-dir: torchrun's own parser would take --run for its --run-path
        r = torchrun("-m", "simclr", *args, "--run-dir", str(run), "--out", str(tmp_path / "two.json"))
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.count(f"{command}: top1") == 1  # rank 0 alone reports
        r = subprocess.run([sys.executable, "-m", "simclr", *args, "--run", str(run), "--out",
                            str(tmp_path / "one.json")], capture_output=True, text=True, env=ENV, timeout=240)
        assert r.returncode == 0, r.stderr[-3000:]
        one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
        assert two["top1"] == pytest.approx(one["top1"]) and two["top5"] == pytest.approx(one["top5"])


def test_torchrun_batch_must_divide_among_ranks(tmp_path: Path) -> None:
    args = [a if a != "16" else "15" for a in TINY]
    r = torchrun("-m", "simclr", "pretrain", "--out", str(tmp_path / "run"), *args)
    assert r.returncode != 0
    assert r.stderr.count("--batch-size 15 (the global batch) does not divide among 2 ranks") == 1
    # torchrun's agent prints its own ChildFailedError report; no simclr frame is in it
    assert "SimCLRError" not in r.stderr and "simclr/train/" not in r.stderr


def test_torchrun_refuses_per_view_bn(tmp_path: Path) -> None:
    r = torchrun("-m", "simclr", "pretrain", "--out", str(tmp_path / "run"), *TINY, "--bn-views", "per-view")
    assert r.returncode != 0
    assert r.stderr.count("--bn-views per-view runs in one process only") == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


FAILING = """
import sys
from simclr.data.loaders import PretrainLoader

original = PretrainLoader.batches


def batches(self, epoch, start=0):
    for i, batch in enumerate(original(self, epoch, start)):
        if self.rank == 1 and i == 2:
            raise RuntimeError("injected failure on rank 1")
        yield batch


PretrainLoader.batches = batches
from simclr.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_failing_rank_ends_the_launch_quickly(tmp_path: Path) -> None:
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    t0 = time.perf_counter()
    r = torchrun(str(script), "pretrain", "--out", str(tmp_path / "run"), "--max-steps", "50", *TINY,
                 timeout=120)
    elapsed = time.perf_counter() - t0
    assert r.returncode != 0
    assert "injected failure on rank 1" in r.stderr
    assert elapsed < 60, f"the launch took {elapsed:.0f} s to fail"


@pytest.mark.parametrize("world", [2])
def test_shard_range_covers_everything_once(world: int) -> None:
    for n in (0, 1, 5, 11):
        parts = [distributed.shard_range(n, distributed.DistContext(r, world)) for r in range(world)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))


def _chunk_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    from helpers import NoBatchStats

    from simclr.methods.chunked import chunked_step

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = NoBatchStats()
        ddp = distributed.wrap_ddp(model, torch.device("cpu"), sync_buffers=False)
        x1, x2 = _views()
        n = N // world
        local = slice(rank * n, (rank + 1) * n)
        loss, _ = chunked_step(ddp, x1[local], x2[local], 3, NTXentLoss(TAU), no_sync=ddp.no_sync)  # chunks of 3 + 1
        torch.save({"loss": loss, **{k: p.grad.clone() for k, p in model.named_parameters()}},
                   Path(out_dir) / f"chunk{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_in_chunks_equal_one_process_whole_batch(tmp_path: Path) -> None:
    from helpers import NoBatchStats

    torch.manual_seed(0)
    model = NoBatchStats()
    x1, x2 = _views()
    _, z = model(torch.cat([x1, x2]))
    loss, _ = nt_xent(*z.chunk(2), TAU)
    loss.backward()
    mp.spawn(_chunk_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        out = torch.load(tmp_path / f"chunk{r}.pt")
        assert _rel(out["loss"], loss.detach()) < 1e-6
        got = torch.cat([out[k].flatten() for k, _ in model.named_parameters()])
        ref = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert _rel(got, ref) < 1e-5


def test_torchrun_finetune_and_distill_write_one_result(tmp_path: Path) -> None:
    run, ft, ds = tmp_path / "run", tmp_path / "ft", tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "simclr", "pretrain", "--out", str(run), "--max-steps", "2", *TINY,
                        "--no-online-probe"], capture_output=True, text=True, env=ENV, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    small = ["--limit", "64", "--batch-size", "8", "--device", "cpu", "--log-every", "1", "--epochs", "1"]
    r = torchrun("-m", "simclr", "finetune", "--run-dir", str(run), "--out", str(ft), "--label-fraction", "0.5",
                 *small)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finetune: top1") == 1 and r.stderr.count("fine-tuning") == 1  # rank 0 alone reports
    state = torch.load(ft / "checkpoint.pt", weights_only=True)
    labelled = len((ft / "subset.txt").read_text().split())
    assert 24 <= labelled <= 40 and state["step"] == labelled // 8  # global batches of 8, split over 2 ranks
    r = torchrun("-m", "simclr", "distill", "--teacher", str(ft), "--out", str(ds), *small)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (ds / "results.json").exists() and (ds / "classifier.pt").exists()


def _gpu_launch_worker(rank: int, world: int, store: str, out_dir: str, gpus: int, device: str) -> None:
    """One rank of a torchrun launch on a machine with ``gpus`` (faked) GPUs, through ``init_from_env``
    and the CLI; the process group it asks for (nccl) is made with gloo on a file store."""
    import contextlib
    import io

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
    seen: dict = {"set_device": [], "backend": None}
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: gpus
    torch.cuda.set_device = lambda i: seen["set_device"].append(int(i))
    real_init = dist.init_process_group

    def init(backend: str, timeout=None) -> None:  # noqa: ANN001
        seen["backend"] = backend
        real_init("gloo", init_method=f"file://{store}", rank=rank, world_size=world)

    dist.init_process_group = init
    try:
        ctx = distributed.init_from_env(device)
        seen["devices"] = [distributed.rank_device(d, ctx) for d in ("cuda", "auto", "cpu")]
        dist.barrier()  # both ranks done connecting before either tears the group down
        distributed.shutdown()
    except Exception as e:  # noqa: BLE001
        seen["error"] = str(e)
        from simclr.cli.main import main  # the same launch through the command: what each rank prints

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            seen["cli_rc"] = main(["pretrain", "--device", device, "--out", str(Path(out_dir) / "run"), "--limit",
                                   "32", "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "16"])
        seen["cli_err"] = err.getvalue()
    torch.save(seen, Path(out_dir) / f"launch{rank}.pt")


def _launch(tmp_path: Path, gpus: int, device: str = "cuda") -> list[dict]:
    mp.spawn(_gpu_launch_worker, args=(2, str(tmp_path / "store"), str(tmp_path), gpus, device), nprocs=2, join=True)
    return [torch.load(tmp_path / f"launch{r}.pt", weights_only=False) for r in range(2)]


def test_each_rank_of_a_gpu_launch_trains_on_its_own_gpu(tmp_path: Path) -> None:
    """Two ranks on a machine with 4 GPUs: rank r sets and trains on cuda:r, over nccl."""
    ranks = _launch(tmp_path, gpus=4)
    for r, seen in enumerate(ranks):
        assert "error" not in seen, seen.get("error")
        assert seen["backend"] == "nccl" and seen["set_device"][0] == r
        assert seen["devices"] == [f"cuda:{r}", f"cuda:{r}", "cpu"]


@pytest.mark.parametrize("gpus, device, words", [
    (1, "cuda", "torchrun starts 2 ranks on this machine but 1 GPU is visible"),
    (4, "cuda:1", "--device cuda:1: under torchrun each rank trains on its own GPU"),
])
def test_a_gpu_launch_that_cannot_work_is_refused_before_the_process_group(
        tmp_path: Path, gpus: int, device: str, words: str) -> None:
    """More ranks than GPUs (nccl would refuse two ranks on one GPU, "Duplicate GPU detected"), or every rank
    on one GPU: refused on every rank before any process group or GPU is touched, in one line (local rank 0's)."""
    ranks = _launch(tmp_path, gpus=gpus, device=device)
    for seen in ranks:
        assert words in seen["error"]
        assert seen["backend"] is None and seen["set_device"] == []  # refused before either
        assert seen["cli_rc"] == 2
    assert ranks[0]["cli_err"].strip().splitlines() == [f"error: {ranks[0]['error']}"]
    assert ranks[1]["cli_err"] == ""
