"""Cost of the SpatioTemporalTransformer's attention: time and peak memory per training step
as the number of patches per frame (N) and of time steps (T = context + leads) grow.

Each layer attends spatially (``T`` attentions over ``N`` tokens) and across steps (one
attention over ``T·N`` tokens), so the attention part grows like ``T N² + (T N)²`` while the
linear layers grow like ``T N``. Every configuration runs in a fresh process (so the memory of
one does not hide another's): a few warm-up steps, then ``--repeats`` timed forward+backward+
optimiser steps. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA; on CPU it is the
growth of the process's peak resident set size (``ru_maxrss``) during the steps, over what the
model and the data already held (so it includes gradients, optimiser state and activations).

    nice -n 10 python benchmarks/attention_cost.py                     # default grid, CPU
    python benchmarks/attention_cost.py --device cuda --frames 32 64 128 --steps 10 20 40
    python benchmarks/attention_cost.py --quick                         # a tiny grid (seconds)

Prints a markdown table (``--json FILE`` also writes the rows). Timings measured while other
processes load the machine are not comparable with quiet ones.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time


def _measure(cfg: dict, queue) -> None:
    import torch

    torch.set_num_threads(cfg["threads"])
    from pyro_videossm.models.forecasters.spatiotemporal_transformer import (
        SpatioTemporalTransformer,
    )

    dev = torch.device(cfg["device"])
    torch.manual_seed(0)
    h = cfg["frame"]
    half = cfg["steps"] // 2
    model = SpatioTemporalTransformer(
        (h, h), context_length=cfg["steps"] - half, leads=half, patch=cfg["patch"],
        d_model=cfg["d_model"], heads=cfg["heads"], encoder_layers=cfg["layers"],
        decoder_layers=cfg["layers"]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = {"frames": torch.rand(cfg["batch"], cfg["steps"], h, h, device=dev)}

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(batch)
        loss.backward()
        opt.step()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(cfg["warmup"]):
        step()
    times = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
        kind = "peak CUDA memory allocated during the steps, over the model and data"
    else:
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1.0 if sys.platform == "darwin" else 1024.0  # Linux reports KiB
        peak_mb = (rss1 - rss0) * scale / 2**20
        kind = "growth of the peak resident set during the steps, over the model and data"
    times.sort()
    queue.put({**cfg, "patches": model.n_patches, "tokens": model.n_patches * cfg["steps"],
               "ms_per_step": 1e3 * times[len(times) // 2], "ms_min": 1e3 * times[0],
               "peak_mb": peak_mb, "memory": kind,
               "params": sum(p.numel() for p in model.parameters())})


def run(cfg: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(cfg, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return {**cfg, "error": f"exit {proc.exitcode}"}
    return queue.get()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[32, 64, 128],
                   help="frame sides (N = (side / patch)^2 patches; default 32 64 128)")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40],
                   help="time steps T = context + leads (default 10 20 40)")
    p.add_argument("--patch", type=int, default=8, help="patch side (default 8)")
    p.add_argument("--batch", type=int, default=4, help="clips per step (default 4)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers, each")
    p.add_argument("--repeats", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-tokens", type=int, default=3000,
                   help="skip configurations with more tokens T·N per clip (the cross-step "
                        "attention holds (T·N)² scores per head; default 3000)")
    p.add_argument("--quick", action="store_true", help="a tiny grid that runs in seconds")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.steps, args.repeats, args.warmup = [16, 32], [4, 8], 2, 1
        args.batch, args.d_model, args.layers = 2, 16, 1
    rows = []
    for frame in args.frames:
        for steps in args.steps:
            cfg = {"frame": frame, "steps": steps, "patch": args.patch, "batch": args.batch,
                   "d_model": args.d_model, "heads": args.heads, "layers": args.layers,
                   "repeats": args.repeats, "warmup": args.warmup, "threads": args.threads,
                   "device": args.device}
            tokens = (frame // args.patch) ** 2 * steps
            if tokens > args.max_tokens:
                rows.append({**cfg, "error": f"skipped: {tokens} tokens > --max-tokens"})
                continue
            rows.append(run(cfg))
            r = rows[-1]
            print(f"frame {frame} steps {steps}: " + (r.get("error") or
                  f"{r['ms_per_step']:.1f} ms/step, {r['peak_mb']:.0f} MB"), file=sys.stderr)
    print(f"SpatioTemporalTransformer training step (forward + backward + Adam), batch "
          f"{args.batch}, patch {args.patch}, d_model {args.d_model}, {args.layers}+"
          f"{args.layers} layers, {args.threads} thread(s), {args.device} "
          f"({platform.processor() or platform.machine()})\n")
    print("| frame | patches N | steps T | tokens T·N | ms / step | peak memory (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "error" in r:
            print(f"| {r['frame']} | | {r['steps']} | | {r['error']} | |")
            continue
        print(f"| {r['frame']} | {r['patches']} | {r['steps']} | {r['tokens']} | "
              f"{r['ms_per_step']:.1f} | {r['peak_mb']:.0f} |")
    if rows and "memory" in rows[0]:
        print(f"\nmemory: {rows[0]['memory']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
