"""The disentanglement protocol of sequential VAEs (Li & Mandt 2018; Zhu et al. 2020).

A trusted :class:`~pyro_videossm.evaluation.judge.Judge` scores generated clips:

* **dynamics kept** — encode a real test clip, keep its dynamic latents ``z_{1:T}`` (posterior
  mean), draw the static latent ``f`` from its prior, decode, and ask the judge for the
  *motion*: if the motion lives in ``z`` alone, the judge recovers the test clip's motion.
* **static kept** — keep ``f`` (posterior mean), draw ``z_{1:T}`` from the recurrent prior,
  decode, and ask the judge for each *static factor*.

For each label, on a class-balanced subset of the test clips: accuracy against the test
clip's label, the inception score ``IS = exp(E_x KL(p(y|x) ‖ p(y)))``, the conditional
entropy ``H(y|x) = E_x H(p(y|x))`` and the marginal entropy ``H(y) = H(E_x p(y|x))``, averaged
over ``repeats`` draws of the prior. Since ``E_x KL(p(y|x) ‖ p(y)) = H(y) - H(y|x)`` with
``0 ≤ H(y|x)`` and ``H(y) ≤ ln K``, ``IS ≤ K`` (``K`` classes) by construction; both bounds
are asserted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.data.sprites import frames_tensor, labels_tensor
from pyro_videossm.errors import InputError
from pyro_videossm.evaluation.judge import Judge, check_trusted, judge_accuracy
from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE


def classification_scores(probs: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    """Scores of predicted class probabilities ``probs (N, K)`` (rows sum to 1).

    Returns ``accuracy`` (NaN without ``labels``), ``IS``, ``H_y_given_x``, ``H_y`` (nats).
    Asserts ``IS ≤ K`` and ``H(y) ≤ ln K`` (true by construction, up to rounding).
    """
    if probs.dim() != 2 or probs.shape[0] == 0:
        raise InputError(f"probabilities must be (N, K) with N >= 1, got {tuple(probs.shape)}")
    p = probs.double()
    K = p.shape[1]
    p_y = p.mean(0)
    h_yx = -torch.special.xlogy(p, p).sum(-1).mean()
    h_y = -torch.special.xlogy(p_y, p_y).sum()
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, p_y.expand_as(p))).sum(-1).mean()
    IS = float(torch.exp(kl))
    tol = 1e-6
    assert IS <= K * (1 + tol), f"inception score {IS} exceeds the number of classes {K}"
    assert float(h_y) <= math.log(K) + tol, f"H(y) = {float(h_y)} exceeds ln K = {math.log(K)}"
    acc = (float((probs.argmax(-1) == labels).double().mean()) if labels is not None
           else math.nan)
    return {"accuracy": acc, "IS": IS, "H_y_given_x": float(h_yx), "H_y": float(h_y)}


def balanced_subset(labels: Tensor, n_classes: int | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Indices of a class-balanced random subset: every class present keeps as many items as
    the rarest class has (sorted indices)."""
    labels = labels.reshape(-1)
    K = int(labels.max()) + 1 if n_classes is None else n_classes
    counts = torch.bincount(labels, minlength=K)
    present = counts > 0
    if not present.any():
        return labels.new_zeros(0)
    m = int(counts[present].min())
    keep = []
    for k in torch.nonzero(present).flatten().tolist():
        idx = torch.nonzero(labels == k).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=generator)[:m]])
    return torch.sort(torch.cat(keep)).values


@torch.no_grad()
def _decode_batched(model: DisentangledSequentialVAE, f: Tensor, z: Tensor,
                    batch_size: int) -> Tensor:
    out = [model.decode(f[s:s + batch_size], z[s:s + batch_size]).cpu()
           for s in range(0, f.shape[0], batch_size)]
    return torch.cat(out)


@torch.no_grad()
def encode_batched(model: DisentangledSequentialVAE, x: Tensor, batch_size: int = 256
                   ) -> tuple[Tensor, Tensor]:
    """Posterior means ``f (N, F)``, ``z (N, T, Z)`` of clips ``x (N, T, C, S, S)``."""
    device = next(model.parameters()).device
    fs, zs = [], []
    for s in range(0, x.shape[0], batch_size):
        f, _, z, _ = model.encode(x[s:s + batch_size].to(device))
        fs.append(f)
        zs.append(z)
    return torch.cat(fs), torch.cat(zs)


def _mean_scores(runs: list[dict[str, float]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out.update({f"{k}_std": float(np.std([r[k] for r in runs])) for k in ("accuracy", "IS")})
    return out


@torch.no_grad()
def evaluate_disentanglement(
    model: DisentangledSequentialVAE,
    judge: Judge,
    test: xr.Dataset,
    *,
    motion_label: str = "motion",
    static_labels: Sequence[str] | None = None,
    repeats: int = 5,
    seed: int = 0,
    batch_size: int = 256,
    min_judge_accuracy: float | None = None,
    max_per_class: int | None = None,
) -> dict:
    """Run the protocol on the test clips of ``test`` (frames and labels).

    Returns ``{"judge": {label: accuracy on real clips}, "reconstruction": {label: accuracy of
    the judge on reconstructions}, "dynamics_kept": {motion_label: scores},
    "static_kept": {factor: scores}}`` where scores are :func:`classification_scores`
    averaged over ``repeats`` prior draws (with ``accuracy_std``, ``IS_std``). The judge
    must first pass :func:`~pyro_videossm.evaluation.judge.check_trusted` on the same real
    clips (``min_judge_accuracy``, default 0.99, on ``motion_label``).

    The protocol runs on a subset of the test clips balanced by motion (``max_per_class``
    clips per motion class at most; all when None); each static factor is scored on a
    subset of it balanced by that factor.
    """
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}")
    static_labels = [k for k in judge.labels if k != motion_label] if static_labels is None \
        else list(static_labels)
    needed = [motion_label, *static_labels]
    unknown = [k for k in needed if k not in judge.labels]
    if unknown:
        raise InputError(f"the judge has no head for {unknown} (has {list(judge.labels)})")
    x = frames_tensor(test, "test clips", channels=model.channels, size=model.size)
    y = labels_tensor(test, needed, "test clips (labels are needed for evaluation)",
                      judge.labels)
    if (judge.channels, judge.size) != (model.channels, model.size):
        raise InputError(f"judge frames ({judge.channels}x{judge.size}) and model frames "
                         f"({model.channels}x{model.size}) differ")
    real = judge_accuracy(judge, test, batch_size)
    check_trusted(real, motion_label,
                  min_judge_accuracy if min_judge_accuracy is not None else 0.99)
    if max_per_class is not None and max_per_class < 1:
        raise InputError(f"max_per_class must be >= 1, got {max_per_class}")

    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    # clips balanced by motion (at most max_per_class per class)
    sub = balanced_subset(y[motion_label], judge.labels[motion_label], gen)
    if max_per_class is not None:
        labels_sub = y[motion_label][sub]
        keep = torch.cat([torch.nonzero(labels_sub == k).flatten()[:max_per_class]
                          for k in range(judge.labels[motion_label])])
        sub = torch.sort(sub[keep]).values
    x, y = x[sub], {k: v[sub] for k, v in y.items()}
    f_post, z_post = encode_batched(model, x, batch_size)
    N, T = z_post.shape[:2]

    recon = judge.predict_proba(_decode_batched(model, f_post, z_post, batch_size), batch_size)
    recon_acc = {k: float((recon[k].argmax(-1) == y[k]).float().mean()) for k in needed}

    # dynamics kept, static from the prior -> motion
    runs = []
    for _ in range(repeats):
        f = model.sample_static(N)
        frames = _decode_batched(model, f, z_post, batch_size)
        p = judge.predict_proba(frames, batch_size)[motion_label]
        runs.append(classification_scores(p, y[motion_label]))
    dynamics_kept = {motion_label: _mean_scores(runs)}

    # static kept, dynamics from the prior -> each static factor
    static_runs: dict[str, list] = {k: [] for k in static_labels}
    subsets = {k: balanced_subset(y[k], judge.labels[k], gen) for k in static_labels}
    for _ in range(repeats):
        z = torch.cat([model.sample_dynamics(min(batch_size, N - s), T).cpu()
                       for s in range(0, N, batch_size)])
        frames = _decode_batched(model, f_post, z, batch_size)
        probs = judge.predict_proba(frames, batch_size)
        for k in static_labels:
            static_runs[k].append(classification_scores(probs[k][subsets[k]],
                                                        y[k][subsets[k]]))
    static_kept = {k: _mean_scores(v) for k, v in static_runs.items()}
    model.train(was)
    return {"judge": real, "reconstruction": recon_acc, "dynamics_kept": dynamics_kept,
            "static_kept": static_kept, "clips": int(N), "repeats": int(repeats),
            "balanced_clips": {motion_label: int(N),
                               **{k: int(len(v)) for k, v in subsets.items()}}}


def summary_row(name: str, result: dict, motion_label: str = "motion") -> dict[str, float | str]:
    """One table row: motion scores with dynamics kept, mean static accuracy with static kept."""
    m = result["dynamics_kept"][motion_label]
    st = result["static_kept"]
    row: dict[str, float | str] = {
        "model": name,
        "motion acc": m["accuracy"],
        "motion IS": m["IS"],
        "H(y|x)": m["H_y_given_x"],
        "H(y)": m["H_y"],
        "static acc (mean)": float(np.mean([v["accuracy"] for v in st.values()])) if st
        else math.nan,
    }
    for k, v in st.items():
        row[f"{k} acc"] = v["accuracy"]
    row["recon motion acc"] = result["reconstruction"][motion_label]
    return row
