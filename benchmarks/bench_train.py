"""Training throughput: our trainer's step against a plain fp32 HF loop, and against the matmul peak.

Run on demand (never in tests):
    python benchmarks/bench_train.py [--sizes m1 m2 m3 m4] [--steps 8] [--precisions fp32 bf16 bf16-master] [--compile]
    EMPIRICIST_MALLOC=default python benchmarks/bench_train.py ...   # glibc's own malloc behaviour throughout

For each micro size, in one process, on the same model shape and the same batch:
- "plain fp32 HF": ``model(input_ids, labels=input_ids).loss``, ``torch.optim.AdamW`` defaults, torch's
  default threads — what a user writes first;
- "empiricist": the trainer's own step (``Stepper``: the named precision, our optimiser, deterministic
  kernels) — the code ``empiricist suite train`` runs, here on all cores for every size (the micro recipe
  gives m1/m2 one thread each and trains them side by side: ``bench_schedule.py`` measures that).
The allocator setting (``empiricist._malloc``: freed memory kept for reuse) is applied at the start, so
both loops run with it; ``EMPIRICIST_MALLOC=default`` runs both without it. Page faults per step are
printed beside each row.
MFU = model FLOPs/s ÷ the measured peak of a large matmul in the same precision (fp32 or bf16), with
model FLOPs = 6·N·tokens + 12·layers·d·T·tokens (attention, as in the PaLM appendix).
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch

from empiricist._malloc import keep_freed_memory
from empiricist.suite.config import get_preset
from empiricist.suite.model import build_model
from empiricist.suite.step import Stepper, configure_threads, deterministic


def matmul_rate(dtype: torch.dtype, m: int, k: int, n: int, reps: int = 10) -> float:
    """FLOP/s of an (m×k)·(k×n) matmul in ``dtype`` after a warm-up: the peak for 2048³, or what one of a
    model's own shapes (tokens × d → 4d) can reach."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * m * k * n * reps / (time.perf_counter() - t)


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    return matmul_rate(dtype, n, n, n)


def model_flops_per_token(size, vocab: int, seq_len: int) -> float:
    n = size.n_params(vocab) - vocab * size.d_model  # input embedding lookups are not matmuls
    return 6 * n + 12 * size.n_layers * size.d_model * seq_len


def time_steps(step_fn, steps: int) -> tuple[float, float]:
    """Seconds and minor page faults per step, after a warm-up."""
    step_fn()
    step_fn()  # warm-up (allocator, oneDNN primitive caches)
    f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        step_fn()
    return (time.perf_counter() - t) / steps, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f) / steps


def bench_size(name: str, steps: int, args_precisions: list[str] | None = None, also_compiled: bool = False) -> list[dict]:
    cfg = get_preset("micro")
    size, t = cfg.size(name), cfg.train
    vocab = cfg.vocab_size
    batch = torch.randint(0, vocab, (t.batch_size, t.seq_len + 1), generator=torch.Generator().manual_seed(0))
    tokens = t.batch_size * t.seq_len
    rows = []

    torch.set_num_threads(os.cpu_count() or 1)  # torch's default
    plain = build_model(size, vocab, t.seq_len, seed=0)
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=1e-3)

    def plain_step() -> None:
        loss = plain(input_ids=batch, labels=batch).loss
        loss.backward()
        plain_opt.step()
        plain_opt.zero_grad()

    rows.append(("plain fp32 HF", "fp32", *time_steps(plain_step, steps)))

    configure_threads(0)  # all cores, as plain: one model's speed (bench_schedule measures side by side)
    precisions = args_precisions or [t.precision_for(size)]
    for precision in precisions:
        for compile in ([False, True] if also_compiled and precision != "bf16-master" else [False]):
            ours = build_model(size, vocab, t.seq_len, seed=0)
            stepper = Stepper(ours, t, precision, compile)
            with deterministic():
                sec, faults = time_steps(lambda s=stepper: s(batch, t.lr), steps)
            rows.append(("empiricist" + (" (compiled)" if compile else ""), precision, sec, faults))
    flops_tok = model_flops_per_token(size, vocab, t.seq_len)
    out = []
    for label, prec, sec, faults in rows:
        out.append({"size": name, "params": size.n_params(vocab), "loop": label, "precision": prec,
                    "tokens_per_s": tokens / sec, "model_tflops": flops_tok * tokens / sec / 1e12, "faults": faults})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["m1", "m2", "m3", "m4"])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--precisions", nargs="+", default=None,
                    help="trainer precisions to compare (default: the micro preset's for each size)")
    ap.add_argument("--compile", action="store_true", help="also time fp32/bf16 with torch.compile")
    args = ap.parse_args()
    tuned = keep_freed_memory()
    torch.set_num_threads(os.cpu_count() or 1)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"cores: {os.cpu_count()}  matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s (2048×2048)  malloc: {'kept for reuse' if tuned else 'glibc default'}\n")
    print("| size | params | loop | precision | tokens/s | speed-up | model GFLOP/s | MFU | faults/step |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    shapes = []
    for name in args.sizes:
        rows = bench_size(name, args.steps, args.precisions, args.compile)
        t, d = get_preset("micro").train, get_preset("micro").size(name).d_model
        shapes.append(f"{name}: {t.batch_size * t.seq_len}×{d} @ {d}×{4 * d}: fp32 "
                      f"{matmul_rate(torch.float32, t.batch_size * t.seq_len, d, 4 * d, 20) / 1e9:.0f}, bf16 "
                      f"{matmul_rate(torch.bfloat16, t.batch_size * t.seq_len, d, 4 * d, 20) / 1e9:.0f} GFLOP/s")
        base = rows[0]["tokens_per_s"]
        for r in rows:
            print(f"| {r['size']} | {r['params']:,} | {r['loop']} | {r['precision']} | {r['tokens_per_s']:,.0f} | "
                  f"{r['tokens_per_s'] / base:.2f}× | {r['model_tflops'] * 1e3:.1f} | "
                  f"{r['model_tflops'] * 1e12 / peaks['fp32' if r['precision'] == 'fp32' else 'bf16']:.1%} | {r['faults']:,.0f} |",
                  flush=True)
    print("\nmatmul at each size's MLP shape (forward up-projection), same process:\n" + "\n".join(shapes))


if __name__ == "__main__":
    main()
