"""``trmlab bench``: trmlab's speed against the machine's matmul limit and against a peer, in one run.

>>> result = run_bench(quick=True)            # about a minute; the full run takes tens of minutes
>>> print(format_table(result))
>>> write_results(result)                     # bench/results/<machine_kind>.json (atomic)

For every case (a preset's model at a batch), dtype (fp32, bf16) and mode (eager, ``torch.compile``):

* **training**: sample-steps/s of one supervision step (forward + loss + backward + optimiser, the
  preset's optimiser and loss, random tokens) as the median of ``repeats`` timed repeats, their
  spread, and the achieved FLOP/s from :mod:`trmlab.model.flops` (matrix products only);
* **thinking** (eager): puzzles/s of test-time scaling with K = 16 noisy trajectories per puzzle in one
  batch, against the plain evaluation at the same number of network calls (``rows_ratio``);
* **inference** (eager): puzzles/s of solving a batch through all ``n_supervision`` steps
  (:func:`~trmlab.model.act.run_to_halt`, ``halting="max"``), and with learned halting -- the halting
  head is untrained here, so the benchmark gives it random weights and a bias that makes half the batch
  halt after the first step (:func:`_learned_halting_model`), and reports the mean steps used;
* **memory** (eager): the bytes autograd saves for the backward of one step (activations, counted by a
  saved-tensors hook, each storage once) plus parameters, gradients and optimiser state; on CUDA the
  allocator's peak. ``max_batch_24gib`` is how many samples fit in 24 GiB at that rate;
* **matmul limit**: this machine's measured matmul speed at exactly the model's products
  (:func:`trmlab.model.flops.train_gemms`, each shape timed by :func:`trmlab.machine.matmul_seconds`
  in the same dtype, into a preallocated result), FLOP-weighted (the time all products would take at
  their measured speed); every training figure is also a fraction of it;
* **peer**: lucidrains' ``tiny-recursive-model`` (the optional extra ``trmlab[bench]``) at the matched
  configuration, in its own process (:mod:`trmlab.bench.peer`); every figure is also a ratio
  to it. Without the package the peer is reported as skipped.

The JSON records the machine (:func:`trmlab.machine.cpu_info`), what ``dtype=auto`` picks for each case
and why, the settings, and every repeat.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import torch

from .. import machine
from ..config import RunConfig, get_preset
from ..io import write_json_atomic
from ..model import build_model, count_parameters, run_to_halt
from ..eval.thinking import run_trajectories
from ..model.flops import inference_flops, total_flops, train_flops, train_gemms
from ..model.layers import swiglu_width
from ..train.distributed import cpu_auto_dtype
from ..train.losses import act_loss
from ..train.optim import AdamATan2, SparseSignSGD

FORMAT = "trmlab-bench-1"
GIB = 1024 ** 3
MEMORY_BUDGET = 24 * GIB


@dataclass(frozen=True)
class Case:
    """A preset's model timed at ``train_batch`` (training) and ``infer_batch`` (inference; 0 = not timed)."""

    name: str
    preset: str
    title: str
    train_batch: int
    infer_batch: int
    quick_train_batch: int = 0  # 0: not in --quick
    quick_infer_batch: int = 0
    compile: bool = True  # also timed under torch.compile (full run)
    overrides: tuple = ()  # key=value overrides of the preset
    quick_dtypes: tuple = ("float32", "bfloat16")  # dtypes in --quick

    def batches(self, quick: bool) -> tuple[int, int]:
        """(training, inference) batch; a case without quick batches named in --quick runs its full ones."""
        if quick and self.quick_train_batch:
            return self.quick_train_batch, self.quick_infer_batch
        return self.train_batch, self.infer_batch


CASES: dict[str, Case] = {c.name: c for c in [
    Case("cpu_sudoku4", "cpu_sudoku4", "CPU preset: TRM-Att hidden 128, 4x4 Sudoku (1+16 tokens), T=2 n=2",
         64, 64, 64, 64),
    Case("cpu_mlp_sudoku4", "cpu_mlp_sudoku4", "CPU preset: TRM-MLP hidden 128, 4x4 Sudoku", 64, 64),
    Case("cpu_sudoku9", "cpu_sudoku9", "CPU preset: TRM-Att hidden 256, 9x9 Sudoku (1+81 tokens), T=2 n=3",
         32, 32),
    Case("att_sudoku", "pretrain_att_sudoku", "reference TRM-Att Sudoku: hidden 512, 16+81 tokens, T=3 n=6",
         32, 4, 4, 0),
    Case("mlp_sudoku", "pretrain_mlp_t_sudoku", "reference TRM-MLP Sudoku: hidden 512, 16+81 tokens, T=3 n=6",
         32, 4),
    # inference at 916 tokens is not timed (16 supervision steps of one puzzle are ~3.8 TFLOP); the
    # training step is the figure, and its memory the point: how large a batch fits
    Case("att_maze", "pretrain_att_maze30x30", "reference TRM-Att Maze: hidden 512, 16+900 tokens, T=3 n=4",
         4, 0, 1, 0, compile=False, quick_dtypes=("float32",)),
    Case("att_maze_ckpt", "pretrain_att_maze30x30", "the same with activation checkpointing (less memory)",
         4, 0, 1, 0, compile=False, quick_dtypes=("float32",), overrides=("activation_checkpointing=true",)),
]}
QUICK_CASES = [c.name for c in CASES.values() if c.quick_train_batch]


@dataclass
class Settings:
    quick: bool = False
    dtypes: tuple = ("float32", "bfloat16")
    modes: tuple = ("eager", "compile")
    repeats: int = 3
    repeat_seconds: float = 4.0  # steps per repeat are chosen to take about this long
    matmul_seconds: float = 0.2  # per product shape and dtype
    peer: bool = True
    threads: int = 0  # 0: torch's default

    @classmethod
    def for_run(cls, quick: bool, threads: int = 0, peer: bool = True) -> "Settings":
        if quick:
            return cls(quick=True, modes=("eager",), repeats=2, repeat_seconds=0.5, matmul_seconds=0.03,
                       peer=peer, threads=threads)
        return cls(threads=threads, peer=peer)


# ---------------------------------------------------------------------------------------------------
# trmlab


def case_config(case: Case) -> RunConfig:
    return get_preset(case.preset, list(case.overrides))


def random_batch(cfg: RunConfig, batch: int, seed: int = 0, device="cpu") -> dict:
    m = cfg.model
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(1, m.vocab_size, (batch, m.seq_len), generator=g, dtype=torch.int32).to(device),
            "labels": torch.randint(1, m.vocab_size, (batch, m.seq_len), generator=g, dtype=torch.int32).to(device),
            "puzzle_identifiers": torch.zeros(batch, dtype=torch.int32, device=device)}


class TrainStep:
    """One training supervision step of a preset's model, as the trainer does it (carry, ACT loss,
    backward, the preset's optimisers), on a fixed random batch."""

    def __init__(self, cfg: RunConfig, batch: int, dtype: str, compile: bool = False, device="cpu"):
        torch.manual_seed(0)
        t = cfg.train
        self.model = build_model(cfg.model).to(device)
        self.model.set_forward_dtype(getattr(torch, dtype))
        self.model.core.checkpoint_activations = t.activation_checkpointing
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if t.optimizer == "adamw":
            main = torch.optim.AdamW(self.params, lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay)
        else:
            main = AdamATan2(self.params, lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay)
        self.optimizers = [main]
        if self.model.puzzle_emb is not None:
            self.optimizers.append(SparseSignSGD(self.model.puzzle_emb, lr=t.puzzle_emb_lr))
        self.loss_type, self.halt_weight = t.loss_type, t.halt_loss_weight
        self.batch = random_batch(cfg, batch, device=device)
        self.size = batch
        self.carry = self.model.initial_carry(self.batch)
        if compile:
            self.model.core.compile_recursion()

    def __call__(self) -> None:
        carry, out = self.model(self.carry, self.batch)
        self.carry = carry
        loss, _ = act_loss(out, carry.current_data["labels"], carry.steps, carry.halted, self.loss_type,
                           self.halt_weight)
        (loss / self.size).backward()
        for opt in self.optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)

    def state_bytes(self) -> int:
        """Parameters, their gradients and the optimisers' state."""
        n = sum(p.numel() * p.element_size() * 2 for p in self.params)
        for opt in self.optimizers:
            for st in opt.state.values():
                n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v))
        return n + sum(b.numel() * b.element_size() for b in self.model.buffers())


def saved_activation_bytes(fn: Callable[[], None]) -> int:
    """Bytes autograd keeps for the backward while ``fn`` runs (each storage counted once)."""
    seen: dict = {}

    def pack(t: torch.Tensor):
        try:
            s = t.untyped_storage()
            seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. sparse): their size
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def recompute_bytes(step: TrainStep) -> int:
    """With activation checkpointing the backward runs each network call again and keeps that call's
    activations until its gradient is through: the bytes one call saves, on top of the checkpoints."""
    core = step.model.core
    with torch.no_grad():
        x = core.embed_input(step.batch["inputs"], step.batch["puzzle_identifiers"])
        y, _ = core.initial_state(step.size, x.device)
    h = y.clone().requires_grad_(True)
    core.checkpoint_activations = False
    try:
        return saved_activation_bytes(lambda: core.net(h, x, core.rope))
    finally:
        core.checkpoint_activations = True


def _timed(step: Callable[[], None], units: int, settings: Settings, sync: Callable[[], None],
           first: Optional[Callable[[], None]] = None) -> dict:
    """Warm-up, then ``settings.repeats`` repeats of enough steps for ``repeat_seconds``: ``units`` per
    step (samples or puzzles) per second, median, each repeat, spread ((max - min) / median). ``first``
    runs the first warm-up step instead of ``step`` (to measure memory on it). The first step's time
    (compile time included, under ``torch.compile``) is ``first_step_s``."""
    t0 = time.perf_counter()
    (first or step)()
    sync()
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    sync()
    one = time.perf_counter() - t0
    steps = max(1, round(settings.repeat_seconds / max(one, 1e-6)))
    rates = []
    for _ in range(settings.repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(units * steps / (time.perf_counter() - t0))
    med = statistics.median(rates)
    return {"rate": med, "rates": rates, "spread": (max(rates) - min(rates)) / med, "steps_per_repeat": steps,
            "first_step_s": first_s}


def _sync(device) -> Callable[[], None]:
    return torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)


def time_training(cfg: RunConfig, batch: int, dtype: str, mode: str, settings: Settings, device="cpu") -> dict:
    """Training throughput; in eager mode also the memory of the gradient step (on the first step)."""
    step = TrainStep(cfg, batch, dtype, compile=mode == "compile", device=device)
    memory: dict = {}
    cuda = torch.device(device).type == "cuda"

    def first() -> None:
        if mode != "eager":
            return step()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            step()
            torch.cuda.synchronize()
            memory.update(peak_bytes=torch.cuda.max_memory_allocated(device), method="cuda allocator peak")
            return
        act = saved_activation_bytes(step)
        if step.model.core.checkpoint_activations:  # + the one call the backward recomputes at a time
            act += recompute_bytes(step)
        state = step.state_bytes()
        memory.update(activation_bytes=act, state_bytes=state, peak_bytes=act + state,
                      activation_bytes_per_sample=act / batch,
                      max_batch_24gib=int(max(0, MEMORY_BUDGET - state) // max(act / batch, 1)),
                      method="saved-for-backward tensors + parameters, gradients, optimiser state")

    res = _timed(step, batch, settings, _sync(device), first=first)
    flops = train_flops(cfg.model)
    out = {"sample_steps_per_s": res["rate"], "rates": res["rates"], "spread": res["spread"],
           "steps_per_repeat": res["steps_per_repeat"], "first_step_s": res["first_step_s"],
           "gflop_per_sample_step": flops / 1e9, "gflops": res["rate"] * flops / 1e9}
    if memory:
        out["memory"] = memory
    return out


def _learned_halting_model(model, batch: dict) -> None:
    """The models here are untrained, so their halting head never halts. Give it random weights and set
    its bias so that half the batch wants to halt after the first supervision step: puzzles then stop at
    different steps, and the batch compaction of learned halting is exercised."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        w, b = model.core.q_head.weight, model.core.q_head.bias
        w.copy_(torch.randn(w.shape, generator=g) / w.shape[1] ** 0.5)
        b.zero_()
        _, out = model(model.initial_carry(batch), batch)
        b[0] -= out["q_halt_logits"].float().median()


def time_inference(cfg: RunConfig, batch: int, dtype: str, settings: Settings, device="cpu") -> dict:
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    model.set_forward_dtype(getattr(torch, dtype))
    model.eval()
    data = random_batch(cfg, batch, device=device)
    N = cfg.model.n_supervision
    full = _timed(lambda: run_to_halt(model, data, N, "max"), batch, settings, _sync(device))
    _learned_halting_model(model, data)
    steps = run_to_halt(model, data, N, "learned")["steps"].float().mean().item()
    learned = _timed(lambda: run_to_halt(model, data, N, "learned"), batch, settings, _sync(device))
    flops = inference_flops(cfg.model)
    return {"n_supervision": N, "puzzles_per_s": full["rate"], "rates": full["rates"], "spread": full["spread"],
            "gflops": full["rate"] * flops / 1e9, "gflop_per_puzzle": flops / 1e9,
            "learned_puzzles_per_s": learned["rate"], "learned_rates": learned["rates"],
            "learned_mean_steps": steps}


#: trajectories per puzzle of the test-time scaling case (``trmlab eval --think k=16``)
THINK_K = 16


def time_thinking(cfg: RunConfig, batch: int, dtype: str, settings: Settings, device="cpu") -> dict:
    """Test-time scaling at K = :data:`THINK_K` noisy trajectories per puzzle (:mod:`trmlab.eval.thinking`):
    ``batch`` rows = batch / K puzzles in one batch through all N supervision steps, the bookkeeping
    included (answers back to the puzzle's frame, rule checks). ``rows_ratio``: its rows (trajectories)
    per second over the plain evaluation's puzzles per second at the same batch, i.e. at the same number
    of network calls: 1.0 means K trajectories cost exactly K plain evaluations."""
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    model.set_forward_dtype(getattr(torch, dtype))
    model.eval()
    puzzles = max(1, batch // THINK_K)
    data = random_batch(cfg, puzzles, device=device)
    x, y = data["inputs"].cpu().numpy(), data["labels"].cpu().numpy()
    N = cfg.model.n_supervision
    plain_data = random_batch(cfg, puzzles * THINK_K, device=device)
    plain = _timed(lambda: run_to_halt(model, plain_data, N, "max"), puzzles * THINK_K, settings, _sync(device))
    think = _timed(lambda: run_trajectories(model, x, y, steps=N, k=THINK_K, sigma=0.1, batch_size=puzzles * THINK_K),
                   puzzles, settings, _sync(device))
    return {"k": THINK_K, "puzzles": puzzles, "n_supervision": N, "puzzles_per_s": think["rate"],
            "rates": think["rates"], "spread": think["spread"], "plain_puzzles_per_s": plain["rate"],
            "rows_ratio": think["rate"] * THINK_K / plain["rate"]}


def matmul_limit(cfg: RunConfig, batch: int, dtype: str, seconds: float, device="cpu",
                 cache: Optional[dict] = None) -> dict:
    """This machine's matmul speed at the model's own training products in ``dtype``, FLOP-weighted:
    total FLOPs / the time every product takes at its measured speed."""
    cache = {} if cache is None else cache
    gemms = train_gemms(cfg.model, batch)
    t_total, shapes = 0.0, []
    for g in gemms:
        key = (g.shape, dtype, device)
        if key not in cache:
            cache[key] = machine.matmul_seconds(*g.shape, dtype=dtype, seconds=seconds, device=device)
        t_total += cache[key] * g.count
        shapes.append({"name": g.name, "shape": list(g.shape), "count": g.count,
                       "gflops": 2 * g.batch * g.m * g.k * g.n / cache[key] / 1e9})
    return {"gflops": total_flops(gemms) / t_total / 1e9, "products": shapes}


# ---------------------------------------------------------------------------------------------------
# the peer


PEER_PACKAGE = "tiny-recursive-model"


def peer_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tiny_recursive_model") is not None and \
        importlib.util.find_spec("x_transformers") is not None


def peer_spec(cfg: RunConfig, batch: int, infer_batch: int, dtype: str, settings: Settings, steps: int,
              device="cpu") -> dict:
    m = cfg.model
    return {"dim": m.hidden_size, "depth": m.n_layers, "heads": m.num_heads,
            "ff_inner": swiglu_width(m.hidden_size, m.expansion), "seq_len": m.seq_len, "num_tokens": m.vocab_size,
            "registers": m.puzzle_positions, "T": m.n_recursions, "n": m.n_latent_steps, "batch": batch,
            "infer_batch": infer_batch, "n_supervision": m.n_supervision, "dtype": dtype, "steps": steps,
            "device": str(device),
            "repeats": settings.repeats, "repeat_seconds": settings.repeat_seconds, "warmup": 2,
            "threads": torch.get_num_threads()}


def peer_matchable(cfg: RunConfig) -> Optional[str]:
    """None if the peer can run this model's configuration, else why not."""
    m = cfg.model
    if m.arch != "trm" or m.mlp_t or m.separate_networks or m.gradient != "full" or m.latent_mode != "yz":
        return "the peer has only TRM-Att with one network and the full-recursion gradient"
    if m.pos_encodings != "rope":
        return "the peer is matched with rotary positions only"
    return None


def run_peer(spec: dict, timeout: float = 3600) -> dict:
    """Time the peer in its own process (``python -m trmlab.bench.peer``)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([sys.executable, "-m", "trmlab.bench.peer", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"the peer process failed (exit {proc.returncode}): {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------
# the run


def run_bench(quick: bool = False, only: Optional[list[str]] = None, settings: Optional[Settings] = None,
              device: str = "cpu", cases: Optional[dict[str, Case]] = None, progress: bool = True) -> dict:
    """Run the benchmark; returns the JSON-ready result (see the module text)."""
    from tqdm.auto import tqdm

    settings = settings or Settings.for_run(quick)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    cases = cases or CASES
    names = only or ([c.name for c in cases.values() if c.quick_train_batch] if quick else list(cases))
    unknown = [n for n in names if n not in cases]
    if unknown:
        raise ValueError(f"unknown bench case(s) {', '.join(unknown)}; valid: {', '.join(cases)}")
    info = machine.cpu_info()
    have_peer = settings.peer and peer_available()
    result = {"format": FORMAT, "machine_kind": machine.machine_kind(info), "machine": info,
              "device": str(device), "gpu": torch.cuda.get_device_name(device) if str(device).startswith("cuda") else None,
              "python": platform.python_version(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "trmlab bench" + (" --quick" if quick else "") + (f" --only {' '.join(only)}" if only else "")
              + (f" --threads {settings.threads}" if settings.threads else "") + ("" if settings.peer else " --no-peer")
              + (f" --device {device}" if str(device) != "cpu" else ""),
              "settings": asdict(settings),
              "peer": {"package": PEER_PACKAGE, "available": have_peer,
                       "version": _peer_version() if have_peer else None,
                       "note": None if have_peer else ("skipped: --no-peer" if not settings.peer else
                                                       "skipped: install the extra `pip install trmlab[bench]`")},
              "cases": []}
    jobs = []
    for name in names:
        case = cases[name]
        modes = [m for m in settings.modes if m == "eager" or case.compile]
        for dtype in _dtypes(case, settings):
            jobs += [(case, dtype, mode) for mode in modes]
    bar = tqdm(total=len(jobs), desc="bench", disable=not progress)
    mm_cache: dict = {}
    for name in names:
        case = cases[name]
        cfg = case_config(case)
        train_b, infer_b = case.batches(quick)
        auto = cpu_auto_dtype(cfg.model, min(train_b, 64)) if str(device) == "cpu" else None
        entry = {"case": case.name, "preset": case.preset, "title": case.title, "train_batch": train_b,
                 "infer_batch": infer_b, "params": count_parameters(build_model(cfg.model)),
                 "gflop_per_sample_step": train_flops(cfg.model) / 1e9,
                 "gflop_per_puzzle": inference_flops(cfg.model) / 1e9,
                 "auto_dtype": {"choice": auto[0], "why": auto[1]} if auto else None, "runs": []}
        why_not_peer = "timed at the case without overrides" if case.overrides else peer_matchable(cfg)
        for dtype in _dtypes(case, settings):
            limit = matmul_limit(cfg, train_b, dtype, settings.matmul_seconds, device, mm_cache)
            peer = None
            if have_peer and why_not_peer is None and (not quick or dtype == "float32"):
                bar.set_postfix_str(f"{name} peer {dtype}")
                peer = run_peer(peer_spec(cfg, train_b, infer_b, dtype, settings, steps=0, device=device))
            for mode in [m for m in settings.modes if m == "eager" or case.compile]:
                bar.set_postfix_str(f"{name} {dtype} {mode}")
                run = {"dtype": dtype, "mode": mode, "matmul_limit_gflops": limit["gflops"]}
                try:
                    run["train"] = time_training(cfg, train_b, dtype, mode, settings, device)
                except Exception as e:  # noqa: BLE001 - a platform without a working torch.compile
                    if mode != "compile":
                        raise
                    run["skipped"] = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    entry["runs"].append(run)
                    bar.update(1)
                    continue
                run["train"]["fraction_of_matmul_limit"] = run["train"]["gflops"] / limit["gflops"]
                if mode == "eager" and infer_b:
                    run["inference"] = time_inference(cfg, infer_b, dtype, settings, device)
                    run["thinking"] = time_thinking(cfg, max(infer_b, THINK_K), dtype, settings, device)
                _add_peer_ratios(run, peer, why_not_peer, have_peer, settings, quick)
                entry["runs"].append(run)
                bar.update(1)
            _compile_payoff([r for r in entry["runs"] if r["dtype"] == dtype and "train" in r], train_b)
            entry.setdefault("matmul_products", {})[dtype] = limit["products"]
            if peer is not None:
                entry.setdefault("peer", {})[dtype] = peer
        result["cases"].append(entry)
    bar.close()
    result["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return result


def _compile_payoff(runs: list[dict], batch: int) -> None:
    """On the compiled run: ``compile_overhead_s`` (its first step less a compiled step) and
    ``pays_off_after_steps`` (training steps until the time saved per step has repaid it; None if
    compiled steps are not faster)."""
    by_mode = {r["mode"]: r["train"] for r in runs}
    if "eager" not in by_mode or "compile" not in by_mode:
        return
    eager, comp = by_mode["eager"], by_mode["compile"]
    t_eager, t_comp = batch / eager["sample_steps_per_s"], batch / comp["sample_steps_per_s"]
    overhead = max(0.0, comp["first_step_s"] - t_comp)
    comp["compile_overhead_s"] = overhead
    comp["speedup_over_eager"] = t_eager / t_comp
    comp["pays_off_after_steps"] = int(overhead / (t_eager - t_comp)) + 1 if t_comp < t_eager else None


def _dtypes(case: Case, settings: Settings) -> list[str]:
    return [d for d in settings.dtypes if not settings.quick or d in case.quick_dtypes]


def _add_peer_ratios(run: dict, peer: Optional[dict], why_not: Optional[str], have_peer: bool,
                     settings: Settings, quick: bool) -> None:
    if peer is None or "error" in peer:
        run["peer"] = {"skipped": (peer or {}).get("error") or why_not or
                       ("--no-peer" if not settings.peer else
                        "not installed (pip install trmlab[bench])" if not have_peer else
                        "fp32 only in --quick" if quick else "not run")}
        return
    run["peer"] = {"params": peer["params"], "train_sample_steps_per_s": peer["train_sample_steps_per_s"],
                   "train_ratio": run["train"]["sample_steps_per_s"] / peer["train_sample_steps_per_s"]}
    if "inference" in run and peer.get("infer_puzzles_per_s"):
        run["peer"]["infer_puzzles_per_s"] = peer["infer_puzzles_per_s"]
        run["peer"]["infer_ratio"] = run["inference"]["puzzles_per_s"] / peer["infer_puzzles_per_s"]


def _peer_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PEER_PACKAGE)
    except PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------------
# output


def results_path(result: dict, root: str | os.PathLike = "bench/results") -> Path:
    return Path(root) / f"{result['machine_kind']}.json"


def write_results(result: dict, path: Optional[str | os.PathLike] = None) -> Path:
    return write_json_atomic(path or results_path(result), result, indent=1, sort_keys=False)


def format_table(result: dict) -> str:
    """The run as a text table: one row per case, dtype and mode."""
    m = result["machine"]
    lines = [f"machine: {m['model']} ({m['cores']} cores, torch {m['torch']}, {m['threads']} threads, "
             f"flags {' '.join(m['flags'])})  -> {result['machine_kind']}",
             f"peer: {result['peer']['package']} {result['peer']['version']}" if result["peer"]["available"]
             else f"peer: {result['peer']['note']}"]
    head = (f"{'case':16s} {'dtype':8s} {'mode':7s} {'batch':>5s} {'train/s':>9s} {'+-%':>5s} {'GFLOP/s':>8s} "
            f"{'mm-lim':>7s} {'%lim':>5s} {'peer/s':>8s} {'x peer':>6s} {'infer/s':>9s} {'learned/s':>9s} "
            f"{'steps':>5s} {'mem GiB':>7s}")
    lines += [head, "-" * len(head)]
    for c in result["cases"]:
        for r in c["runs"]:
            if "skipped" in r:
                lines.append(f"{c['case']:16s} {r['dtype']:8s} {r['mode']:7s} {r['skipped']}")
                continue
            tr, inf, pe = r["train"], r.get("inference"), r["peer"]
            mem = tr.get("memory", {}).get("peak_bytes")
            lines.append(
                f"{c['case']:16s} {r['dtype']:8s} {r['mode']:7s} {c['train_batch']:5d} "
                f"{tr['sample_steps_per_s']:9.2f} {100 * tr['spread']:5.1f} {tr['gflops']:8.1f} "
                f"{r['matmul_limit_gflops']:7.1f} {100 * tr['fraction_of_matmul_limit']:5.0f} "
                + (f"{pe['train_sample_steps_per_s']:8.2f} {pe['train_ratio']:6.2f} " if "train_ratio" in pe
                   else f"{'-':>8s} {'-':>6s} ")
                + (f"{inf['puzzles_per_s']:9.2f} {inf['learned_puzzles_per_s']:9.2f} {inf['learned_mean_steps']:5.1f} "
                   if inf else f"{'-':>9s} {'-':>9s} {'-':>5s} ")
                + (f"{mem / GIB:7.2f}" if mem is not None else f"{'-':>7s}"))
    lines.append("")
    for c in result["cases"]:
        for r in c["runs"]:
            th = r.get("thinking")
            if th:
                lines.append(f"thinking K={th['k']}, {c['case']} {r['dtype']}: {th['puzzles_per_s']:.2f} puzzles/s "
                             f"({th['puzzles']} puzzles x {th['k']} trajectories in one batch) = "
                             f"{th['rows_ratio']:.2f}x the plain evaluation's rate at the same network calls")
    for c in result["cases"]:
        extra = f"; auto dtype: {c['auto_dtype']['why']}" if c.get("auto_dtype") else ""
        mem = next((r["train"]["memory"] for r in c["runs"] if "memory" in r.get("train", {})), None)
        fit = (f"; {mem['activation_bytes_per_sample'] / 2**20:.0f} MiB saved per sample, ~{mem['max_batch_24gib']} "
               f"samples fit in 24 GiB" if mem and "max_batch_24gib" in mem else "")
        skipped = {r["peer"]["skipped"] for r in c["runs"] if "skipped" in r.get("peer", {})}
        peer_note = f"; peer: {'; '.join(sorted(skipped))}" if skipped else ""
        for r in c["runs"]:
            tr = r.get("train", {})
            if "compile_overhead_s" in tr:
                pays = tr["pays_off_after_steps"]
                lines.append(f"{c['case']} {r['dtype']} compile: {tr['speedup_over_eager']:.2f}x eager, "
                             f"{tr['compile_overhead_s']:.0f} s compiling, "
                             + (f"pays off after {pays} steps" if pays is not None else "never pays off"))
        lines.append(f"{c['case']}: {c['params']:,} params (peer "
                     f"{next(iter(c.get('peer', {}).values()), {}).get('params', '-')}), "
                     f"{c['gflop_per_sample_step']:.3f} GFLOP/sample-step{fit}{extra}{peer_note}")
    return "\n".join(lines)
