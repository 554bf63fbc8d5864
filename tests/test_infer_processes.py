"""Training in other processes: exact resume after SIGKILL, and data parallel
(``DistributedDataParallel``) with torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pyro
import pytest
import torch
from toy_models import ConjugateGaussian, LinearRegression, mse_loss

from pyro_videossm.infer import LossObjective, SVIObjective, TrainConfig, Trainer

# the scripts import toy_models and this checkout's pyro_videossm (torchrun puts the script's
# folder, not the working directory, on sys.path)
TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
       "PYTHONPATH": os.pathsep.join(filter(None, [TESTS, os.path.dirname(TESTS),
                                                   os.environ.get("PYTHONPATH")]))}

KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import pyro, torch
    torch.set_num_threads(1)
    from pyro_videossm.infer import SVIObjective, TrainConfig, Trainer
    from toy_models import ConjugateGaussian

    ckpt, out, kill_at, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"

    class Killed(SVIObjective):
        steps = 0

        def apply(self, params):
            super().apply(params)
            Killed.steps += 1
            if Killed.steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    exec(open(sys.argv[5]).read())  # defines data() and config(ckpt)
    torch.manual_seed(5)
    model = ConjugateGaussian()
    history = Trainer(Killed(model), config(ckpt)).fit(*data(), resume=resume)
    torch.save({"state": model.state_dict(), "q": pyro.param("conjugate_q_scale").detach(),
                "history": history}, out)
""")

SETUP = textwrap.dedent("""
    import torch
    from pyro_videossm.infer import TrainConfig

    def data():
        x = torch.randn(90, 3, generator=torch.Generator().manual_seed(1))
        return {"x": x}, {"x": x[:30]}

    def config(ckpt):
        # 6 batches per epoch (the last one of 10 items); checkpoints at steps 4, 6, 8, 12,
        # 16 (mid-epoch 3), 18, ...
        return TrainConfig(epochs=4, batch_size=16, lr=0.03, lr_decay=0.8, anneal_epochs=2,
                           checkpoint_path=ckpt, checkpoint_every=4, seed=3, progress=False,
                           patience=5)
""")


def test_resume_after_sigkill_is_bit_for_bit(tmp_path):
    script, setup = tmp_path / "train.py", tmp_path / "setup.py"
    script.write_text(KILL_SCRIPT)
    setup.write_text(SETUP)
    ckpt, out = tmp_path / "ckpt.pt", tmp_path / "out.pt"

    def run(kill_at, resume):
        return subprocess.run([sys.executable, str(script), str(ckpt), str(out), str(kill_at),
                               "1" if resume else "0", str(setup)], env=ENV,
                              capture_output=True, text=True, timeout=120)

    killed = run(kill_at=18, resume=False)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 16  # mid-epoch 3
    resumed = run(kill_at=0, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    got = torch.load(out, weights_only=True)

    # the same run, uninterrupted, in this process
    namespace: dict = {}
    exec(SETUP, namespace)
    pyro.clear_param_store()
    torch.manual_seed(5)
    model = ConjugateGaussian()
    history = Trainer(SVIObjective(model), namespace["config"](None)).fit(*namespace["data"]())
    for key, value in model.state_dict().items():
        assert torch.equal(value, got["state"][key]), key
    assert torch.equal(pyro.param("conjugate_q_scale").detach(), got["q"])
    assert [h["valid_loss"] for h in history] == [h["valid_loss"] for h in got["history"]]
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in got["history"]]
    pyro.clear_param_store()


DDP_SCRIPT = textwrap.dedent("""
    import os, sys
    import pyro, torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    from pyro_videossm.infer import (LossObjective, SVIObjective, TrainConfig, Trainer,
                                     TrainingDiverged)
    from toy_models import ConjugateGaussian, LinearRegression, mse_loss

    out = sys.argv[1]
    dist.init_process_group("gloo")  # joined here so that several fits share it
    rank = dist.get_rank()
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))

    class Crash(Exception):
        pass

    class CrashAt(SVIObjective):
        def __init__(self, module, crash_at):
            super().__init__(module)
            self.crash_at, self.steps = crash_at, 0

        def apply(self, params):
            super().apply(params)
            self.steps += 1
            if self.steps == self.crash_at:
                raise Crash

    wrappers = {}

    def wrapper(name, trainer):
        ddp = trainer.data_parallel
        wrappers[name] = (type(ddp).__name__, ddp.find_unused_parameters)

    def svi_run(name, crash_at=0, resume=False):
        torch.manual_seed(rank)  # every rank draws its own initial values: rank 0's are used
        model = ConjugateGaussian()
        # 100 items: 50 per rank, 4 batches per epoch (the last one of 2 items)
        config = TrainConfig(epochs=4, batch_size=16, lr=0.05, progress=True, anneal_epochs=2,
                             checkpoint_path=os.path.join(out, name), checkpoint_every=3)
        trainer = Trainer(CrashAt(model, crash_at), config)
        history = trainer.fit({"x": x}, {"x": x[:41]}, resume=resume)
        wrapper(name, trainer)
        return model, history

    model, svi_history = svi_run("ckpt.pt")
    q = pyro.param("conjugate_q_scale").detach().clone()
    try:
        svi_run("crashed.pt", crash_at=11)  # last checkpoint: step 9, mid-epoch 3
    except Crash:
        pass
    resumed, resumed_history = svi_run("crashed.pt", resume=True)
    resumed_q = pyro.param("conjugate_q_scale").detach().clone()

    exec(open(sys.argv[2]).read())  # defines regression_data(), svi_data(), SpareConjugate
    torch.manual_seed(rank)
    regression = LinearRegression(2)
    reg_config = TrainConfig(epochs=3, batch_size=16, lr=0.05, progress=False)
    trainer = Trainer(LossObjective(regression, mse_loss), reg_config)
    reg_history = trainer.fit(regression_data())
    wrapper("regression", trainer)

    torch.manual_seed(rank)
    spare = SpareConjugate()
    trainer = Trainer(SVIObjective(spare), svi_config(16))
    spare_history = trainer.fit(svi_data(), svi_data(41))
    wrapper("spare", trainer)
    spare_q = pyro.param("conjugate_q_scale").detach().clone()

    class NaNOnRank1(SVIObjective):
        steps = 0

        def forward_loss(self, batch, annealing_factor):
            loss, differentiable = super().forward_loss(batch, annealing_factor)
            if rank == 1 and self.steps == 4:  # the 5th step
                loss = loss * float("nan")
            return loss, differentiable

        def apply(self, params):
            super().apply(params)
            self.steps += 1

    try:  # 7 batches per epoch; losses are checked at steps 3, 6, ...
        Trainer(NaNOnRank1(ConjugateGaussian()),
                TrainConfig(epochs=1, batch_size=8, log_every=3, progress=False)).fit({"x": x})
        diverged = None
    except TrainingDiverged as e:
        diverged = str(e)
    torch.save({"svi": model.state_dict(), "q": q, "svi_history": svi_history,
                "resumed": resumed.state_dict(), "resumed_q": resumed_q,
                "resumed_history": resumed_history, "regression": regression.state_dict(),
                "reg_history": reg_history, "spare": spare.state_dict(),
                "spare_q": spare_q,
                "spare_history": spare_history, "wrappers": wrappers,
                "diverged": diverged},
               os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()
""")

SHARED = textwrap.dedent("""
    import torch
    from toy_models import ConjugateGaussian

    def regression_data():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(128, 2, generator=g)
        return {"x": x, "y": x @ torch.tensor([[3.0], [-2.0]]) + 0.5}

    def svi_data(n=80):
        # 80 items: per epoch 3 global batches of 32, 32 and 16 items; the guide's noise
        # "eps" travels with its item, so the ELBO is a sum of per-item terms
        g = torch.Generator().manual_seed(4)
        return {"x": 1.1 * torch.randn(n, 3, generator=g), "eps": torch.randn(n, 3, generator=g)}

    def svi_config(batch_size):
        # clip_norm clamps some early gradients of the summed ELBO (hundreds): Adam would
        # not tell a summed gradient from one averaged over processes, the clamp does
        return TrainConfig(epochs=3, batch_size=batch_size, lr=0.05, lr_decay=0.8,
                           anneal_epochs=2, progress=False, seed=2, clip_norm=300.0)

    class SpareConjugate(ConjugateGaussian):
        # a network registered by pyro.module that neither model nor guide uses
        def __init__(self):
            super().__init__()
            self.spare = torch.nn.Linear(2, 2)
""")


def test_distributed_data_parallel_two_processes(tmp_path):
    script, setup = tmp_path / "ddp.py", tmp_path / "data.py"
    script.write_text(DDP_SCRIPT)
    setup.write_text(SHARED)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path), str(setup)],
        env=ENV, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0 and "Address already in use" in proc.stderr:
        pytest.skip("no free port for torchrun")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in r0["svi"]:
        assert torch.equal(r0["svi"][key], r1["svi"][key]), key
        assert torch.equal(r0["svi"][key], r0["resumed"][key]), key
        assert torch.equal(r1["svi"][key], r1["resumed"][key]), key
    assert torch.equal(r0["q"], r1["q"])
    assert torch.equal(r0["q"], r0["resumed_q"]) and torch.equal(r1["q"], r1["resumed_q"])
    for key in r0["regression"]:
        assert torch.equal(r0["regression"][key], r1["regression"][key]), key

    def losses(history):
        return [(h["train_loss"], h["valid_loss"]) for h in history]

    assert losses(r0["svi_history"]) == losses(r1["svi_history"])
    assert losses(r0["svi_history"]) == losses(r0["resumed_history"])
    train_losses = [h["train_loss"] for h in r0["svi_history"]]
    assert train_losses[-1] < train_losses[0] - 1.0
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["world"] == 2 and len(ckpt["per_rank"]) == 2 and ckpt["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt.pt", "crashed.pt", "data.py", "ddp.py", "rank0.pt", "rank1.pt"]
    assert proc.stderr.count("epochs:") >= 1  # rank 0's progress bar

    # every step went through torch's DistributedDataParallel
    assert r0["wrappers"] == r1["wrappers"] == {
        "ckpt.pt": ("DistributedDataParallel", False),
        "crashed.pt": ("DistributedDataParallel", False),
        "regression": ("DistributedDataParallel", False),
        "spare": ("DistributedDataParallel", True)}  # the spare network gets no gradient
    assert proc.stderr.count("data parallel: DistributedDataParallel over 2 processes "
                             "(gloo)") == 6  # rank 0 only, once per fit
    for key in r0["spare"]:
        assert torch.equal(r0["spare"][key], r1["spare"][key]), key
    assert torch.equal(r0["spare_q"], r1["spare_q"])
    assert losses(r0["spare_history"]) == losses(r1["spare_history"])
    # a NaN loss on rank 1 only stops both processes at the same step
    assert r0["diverged"] == r1["diverged"]
    assert "nan at step 5 (epoch 1, batch 5)" in r0["diverged"]

    # Two processes with batches of 16 take the same steps as one process with batches of
    # 32: the sharded permutation interleaves one batch of 32; the ELBO (summed over items)
    # of the global batch is the sum of the two shards' ELBOs, and the mean loss over the
    # global batch the average of the two shards' mean losses.
    namespace: dict = {"TrainConfig": TrainConfig}
    exec(SHARED, namespace)
    torch.manual_seed(0)
    single = LinearRegression(2)
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, progress=False)
    history = Trainer(LossObjective(single, mse_loss), config).fit(namespace["regression_data"]())
    for key, value in single.state_dict().items():
        assert torch.allclose(value, r0["regression"][key], rtol=1e-5, atol=1e-6), key
    assert [h["train_loss"] for h in history] == pytest.approx(
        [h["train_loss"] for h in r0["reg_history"]], rel=1e-5)

    pyro.clear_param_store()
    torch.manual_seed(0)
    single = namespace["SpareConjugate"]()
    initial_spare = {k: v.clone() for k, v in single.spare.state_dict().items()}
    history = Trainer(SVIObjective(single), namespace["svi_config"](32)).fit(
        namespace["svi_data"](), namespace["svi_data"](41))
    for key, value in single.state_dict().items():
        assert torch.allclose(value, r0["spare"][key], rtol=1e-5, atol=1e-6), key
    for key, value in initial_spare.items():  # untouched, here and under DDP
        assert torch.equal(value, single.spare.state_dict()[key])
        assert torch.equal(value, r0["spare"]["spare." + key])
    assert torch.allclose(pyro.param("conjugate_q_scale").detach(), r0["spare_q"], rtol=1e-5)
    assert sum(losses(history), ()) == pytest.approx(sum(losses(r0["spare_history"]), ()),
                                                     rel=1e-5)
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 1.0
    pyro.clear_param_store()
