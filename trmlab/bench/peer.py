"""The peer of ``trmlab bench``: lucidrains' ``tiny-recursive-model`` timed at a configuration matched to
a trmlab model, in its own process, its code unchanged.

Run by :func:`trmlab.bench.speed.run_peer` as ``python -m trmlab.bench.peer SPEC_JSON``; it
prints one JSON object (the last line of stdout). Only this process imports ``tiny_recursive_model``
(the optional extra ``trmlab[bench]``). The matched network is an x-transformers ``Encoder`` of the
same width, depth and heads, full-width rotary positions, RMSNorm, post-norm blocks, a SiLU-gated (GLU)
feed-forward of the same inner width without biases, and PyTorch's fused attention (``attn_flash``);
the peer's register tokens stand for trmlab's puzzle-embedding positions. One training step is the
peer's own ``forward`` with labels (its loss), ``backward`` and ``torch.optim.AdamW``; inference is its
``predict`` with a halting threshold it never reaches, so every puzzle runs all supervision steps.

SPEC keys: ``dim depth heads ff_inner seq_len num_tokens registers T n batch infer_batch n_supervision
dtype device steps (0: chosen from repeat_seconds) repeat_seconds repeats warmup threads``.
"""
from __future__ import annotations

import json
import statistics
import sys
import time


def build(spec: dict):
    from tiny_recursive_model import TinyRecursiveModel
    from x_transformers import Encoder

    head = spec["dim"] // spec["heads"]
    network = Encoder(dim=spec["dim"], depth=spec["depth"], heads=spec["heads"], attn_dim_head=head,
                      rotary_pos_emb=True, rotary_emb_dim=head, use_rmsnorm=True, pre_norm=False,
                      ff_glu=True, ff_swish=True, ff_no_bias=True, ff_mult=spec["ff_inner"] / spec["dim"],
                      attn_flash=True)
    model = TinyRecursiveModel(dim=spec["dim"], num_tokens=spec["num_tokens"], network=network,
                               num_refinement_blocks=spec["T"], num_latent_refinements=spec["n"],
                               num_register_tokens=spec["registers"])
    return model


def timed(fn, units: int, spec: dict, sync=lambda: None) -> dict:
    """The same protocol as trmlab's side (``bench._timed``): warm-up calls, one call timed to choose
    how many make a repeat of ``repeat_seconds`` (or ``steps`` when given), then ``repeats`` repeats."""
    for _ in range(max(1, spec["warmup"] - 1)):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = time.perf_counter() - t0
    steps = spec.get("steps") or max(1, round(spec["repeat_seconds"] / max(one, 1e-6)))
    rates = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        rates.append(units * steps / (time.perf_counter() - t0))
    return {"rate": statistics.median(rates), "rates": rates, "steps": steps}


def run(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec.get("device", "cpu"))
    model = build(spec)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = getattr(torch, spec["dtype"])
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else None
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    B, S = spec["batch"], spec["seq_len"]
    seq = torch.randint(0, spec["num_tokens"], (B, S), device=device)
    labels = torch.randint(0, spec["num_tokens"], (B, S), device=device)
    outputs, latents = model.get_initial()

    def step():
        nonlocal outputs, latents
        if autocast is not None:
            with autocast():
                loss, _, outputs, latents, _, _ = model(seq, outputs, latents, labels=labels)
        else:
            loss, _, outputs, latents, _, _ = model(seq, outputs, latents, labels=labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    train = timed(step, B, spec, sync)
    out = {"params": sum(p.numel() for p in model.parameters()), "train_rates": train["rates"],
           "train_sample_steps_per_s": train["rate"], "train_steps_per_repeat": train["steps"]}
    if spec.get("infer_batch"):
        model.eval()
        iseq = torch.randint(0, spec["num_tokens"], (spec["infer_batch"], S), device=device)

        def solve():
            if autocast is not None:
                with autocast():
                    return model.predict(iseq, halt_prob_thres=2.0, max_deep_refinement_steps=spec["n_supervision"])
            return model.predict(iseq, halt_prob_thres=2.0, max_deep_refinement_steps=spec["n_supervision"])

        infer = timed(solve, spec["infer_batch"], spec, sync)
        out.update(infer_rates=infer["rates"], infer_puzzles_per_s=infer["rate"])
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    print(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
