"""The GAN trainer: losses, EMA, checkpoints, bit-exact resume."""

import pytest
import torch
from torch import nn

from pyro_videossm.errors import InputError
from pyro_videossm.infer.gan_trainer import (
    GANConfig,
    GANObjective,
    GANTrainer,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from pyro_videossm.models.video.flow_animator import (
    FlowAnimationObjective,
    FlowAnimator,
    VideoDiscriminator,
)


class ShiftObjective(GANObjective):
    """Toy pair: the generator maps noise to 2D points, the critic scores points."""

    def generate(self, generator, batch):
        return generator(batch["z"])

    def real(self, batch):
        return batch["x"]


def toy(seed=0):
    torch.manual_seed(seed)
    gen = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    disc = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(2, 8)),
                         nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Flatten(0))
    g = torch.Generator().manual_seed(1)
    data = {"z": torch.randn(20, 2, generator=g), "x": torch.randn(20, 2, generator=g) + 3}
    return gen, disc, data


def test_adversarial_losses_closed_form():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert discriminator_adversarial_loss(real, fake, "hinge") == pytest.approx(0.25 + 0.5)
    assert generator_adversarial_loss(fake, "hinge") == pytest.approx(1.0)
    sp = torch.nn.functional.softplus
    assert discriminator_adversarial_loss(real, fake, "nonsaturating") == pytest.approx(
        float(sp(-real).mean() + sp(fake).mean()))
    assert generator_adversarial_loss(fake, "nonsaturating") == pytest.approx(
        float(sp(-fake).mean()))
    with pytest.raises(InputError):
        generator_adversarial_loss(fake, "wasserstein")


def test_ema_is_the_running_average():
    gen, disc, data = toy()
    trainer = GANTrainer(ShiftObjective(gen, disc), GANConfig(epochs=1, batch_size=20,
                                                              ema_decay=0.5, progress=False))
    before = [p.detach().clone() for p in gen.parameters()]
    trainer.fit(data)  # one step: ema = 0.5 * initial + 0.5 * updated
    for e, p0, p in zip(trainer.ema_generator.parameters(), before, gen.parameters()):
        torch.testing.assert_close(e, 0.5 * p0 + 0.5 * p.detach())


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_generator_learns_to_move_towards_the_data(loss):
    gen, disc, data = toy()
    trainer = GANTrainer(ShiftObjective(gen, disc, loss=loss),
                         GANConfig(epochs=150, batch_size=20, lr_generator=5e-3,
                                   lr_discriminator=5e-3, progress=False))
    start = float(gen(data["z"]).mean().detach())
    history = trainer.fit(data)
    assert len(history) == 150 and {"g_loss", "d_loss", "d_real", "d_fake"} <= set(history[0])
    assert float(gen(data["z"]).mean().detach()) > start + 1.0  # the real points sit at +3


def _params(trainer):
    obj = trainer.objective
    return [p.detach().clone() for m in (obj.generator, obj.discriminator,
                                         trainer.ema_generator) for p in m.state_dict().values()]


@pytest.mark.parametrize("every", [100, 2])  # at epoch ends only; mid-epoch too
def test_resume_is_bit_exact(tmp_path, every):
    def run(epochs, resume, path):
        gen, disc, data = toy()
        cfg = GANConfig(epochs=epochs, batch_size=6, checkpoint_path=str(path),
                        checkpoint_every=every, progress=False)
        trainer = GANTrainer(ShiftObjective(gen, disc), cfg)
        trainer.fit(data, resume=resume)
        return trainer

    straight = run(2, False, tmp_path / "a.pt")
    run(1, False, tmp_path / "b.pt")
    resumed = run(2, True, tmp_path / "b.pt")
    for a, b in zip(_params(straight), _params(resumed)):
        assert torch.equal(a, b)
    assert [h["g_loss"] for h in straight.history] == [h["g_loss"] for h in resumed.history]


def test_resume_of_the_flow_animator_is_bit_exact(tmp_path):
    def run(epochs, resume):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(2)
        data = {"source": torch.rand(4, 1, 8, 8, generator=g),
                "flows": torch.randn(4, 3, 2, 8, 8, generator=g),
                "target": torch.rand(4, 3, 8, 8, generator=g)}
        obj = FlowAnimationObjective(FlowAnimator(channels=4, levels=1),
                                     VideoDiscriminator(channels=4, layers=2))
        trainer = GANTrainer(obj, GANConfig(epochs=epochs, batch_size=3, progress=False,
                                            checkpoint_path=str(tmp_path / "c.pt")))
        trainer.fit(data, valid_data=data, resume=resume)
        return trainer

    straight = run(2, False)
    (tmp_path / "c.pt").unlink()
    run(1, False)
    resumed = run(2, True)
    for a, b in zip(_params(straight), _params(resumed)):
        assert torch.equal(a, b)
    assert straight.history[-1]["valid"] == resumed.history[-1]["valid"]


def test_checkpoint_of_another_run_is_refused(tmp_path):
    gen, disc, data = toy()
    path = tmp_path / "c.pt"
    GANTrainer(ShiftObjective(gen, disc), GANConfig(epochs=1, batch_size=5, progress=False,
                                                    checkpoint_path=str(path))).fit(data)
    gen, disc, data = toy()
    other = GANTrainer(ShiftObjective(gen, disc), GANConfig(epochs=2, batch_size=4,
                                                            progress=False,
                                                            checkpoint_path=str(path)))
    with pytest.raises(InputError, match="batch_size"):
        other.fit(data, resume=True)
    with pytest.raises(InputError, match="resume needs a checkpoint"):
        GANTrainer(ShiftObjective(gen, disc), GANConfig(progress=False)).fit(data, resume=True)
    with pytest.raises(InputError):
        GANConfig(d_steps=0)


def test_resume_after_a_crash_mid_epoch_is_bit_exact(tmp_path):
    class Crashing(ShiftObjective):
        calls = 0

        def generator_loss(self, batch):
            Crashing.calls += 1
            if Crashing.calls == 7:  # during step 7: the checkpoint of step 6 is on disk
                raise KeyboardInterrupt
            return super().generator_loss(batch)

    def trainer(objective_class, path):
        gen, disc, data = toy()
        cfg = GANConfig(epochs=2, batch_size=6, checkpoint_path=str(path), checkpoint_every=2,
                        progress=False)
        return GANTrainer(objective_class(gen, disc), cfg), data

    straight, data = trainer(ShiftObjective, tmp_path / "a.pt")
    straight.fit(data)
    crashing, data = trainer(Crashing, tmp_path / "b.pt")
    with pytest.raises(KeyboardInterrupt):
        crashing.fit(data)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["batch_pos"] == 2  # mid-epoch
    resumed, data = trainer(ShiftObjective, tmp_path / "b.pt")
    resumed.fit(data, resume=True)
    for a, b in zip(_params(straight), _params(resumed)):
        assert torch.equal(a, b)
    assert straight.history == [dict(h, seconds=s["seconds"]) for h, s in
                                zip(resumed.history, straight.history)]
