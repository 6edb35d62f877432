"""GKD training step on a wide vocabulary: peak memory and time of the fused trainer against the unfused ones.

A 2-layer GPT-2 student and teacher (n_embd 64) with V = 32,768 (``--vocab``), a batch of 4 sequences of
512 tokens (the first 64 of each are prompt, label −100): one training step (forward of both models,
the loss, backward) of

- TRL's ``GKDTrainer`` (its generalized JSD on the full logits, autograd);
- ``klkit.integrations.trl.KLKitGKDTrainer`` unfused (klkit's chunked loss on the full logits);
- ``KLKitGKDTrainer(fused=True)`` (hidden states and output layers through
  ``klkit.distill.fused_linear_divergence``: the tokens × V logits never exist), with its default chunk
  (2^24 logits) and with ``chunk_size=256`` tokens.

Each runs in a fresh process (``--child``): *extra peak* is the largest amount torch's CPU allocator held
during the step beyond what it held before (profiler allocation events, the parameters' gradients
included), *peak RSS* the process's high-water mark (``VmHWM``) minus its resident size before the step;
the time is the best of 3 steps after a warm-up. The loss of the first step is shown, so that the
variants are seen to compute the same thing (β = 0.5, T = 1, TRL's loss).

Run: ``.venv/bin/python benchmarks/gkd_memory.py`` (or ``benchmarks/run.py gkd_memory``); ``--quick`` uses
V = 8,192 and 2 × 128 tokens and does not write the document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the tiny tokenizer and chat dataset of the test suite
MB = 2**20
VARIANTS = {
    "TRL GKDTrainer (unfused, autograd)": "trl",
    "KLKitGKDTrainer, fused=False (chunked loss on the logits)": "klkit",
    "KLKitGKDTrainer, fused=True (hidden states × output layer)": "fused",
    "KLKitGKDTrainer, fused=True, chunk_size=256": "fused256",
}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def child(variant: str, vocab: int, batch: int, length: int, threads: int) -> dict:
    """One variant in this process: build the trainer, run the steps, return the figures."""
    import random

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from _tiny_lm import chat_dataset, tokenizer
    from klkit.integrations.trl import KLKitGKDConfig, KLKitGKDTrainer
    from measures import torch_peak_memory

    torch.set_num_threads(threads)
    tok = tokenizer()

    def lm(seed: int) -> GPT2LMHeadModel:
        torch.manual_seed(seed)
        config = GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=length, vocab_size=vocab,
                            initializer_range=0.02 if seed == 0 else 0.2, resid_pdrop=0.0, embd_pdrop=0.0,
                            attn_pdrop=0.0)  # fmt: skip
        return GPT2LMHeadModel(config)

    common = {"output_dir": "/tmp/klkit-gkd-memory", "report_to": "none", "use_cpu": True, "bf16": False,
              "lmbda": 0.0, "beta": 0.5, "temperature": 1.0, "max_length": length, "disable_tqdm": True}  # fmt: skip
    if variant == "trl":
        cls, args = GKDTrainer, GKDConfig(**common)
    else:
        chunk = 256 if variant == "fused256" else None
        cls, args = KLKitGKDTrainer, KLKitGKDConfig(**common, fused=variant.startswith("fused"), chunk_size=chunk)
    trainer = cls(model=lm(0), teacher_model=lm(1), args=args, train_dataset=chat_dataset(), processing_class=tok)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, length), generator=g)
    labels = ids.clone()
    labels[:, :64] = -100
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    count = torch.tensor(int((labels[:, 1:] != -100).sum()))
    random.seed(0)

    def step() -> float:
        trainer.model.zero_grad(set_to_none=True)
        return float(trainer.training_step(trainer.model, dict(inputs), count))

    base_rss = _status("VmRSS")
    loss = step()  # warm-up, and the first step's loss
    peak_rss = _status("VmHWM") - base_rss
    trainer.model.zero_grad(set_to_none=True)
    extra = torch_peak_memory(step)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"loss": loss, "extra_peak": extra, "peak_rss": peak_rss, "seconds": min(times)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(child(argv[1], *(int(a) for a in argv[2:6]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="V = 8,192, 2 × 128 tokens; no docs written")
    parser.add_argument("--vocab", type=int, default=32_768)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    vocab, batch, length = (8_192, 2, 128) if args.quick else (args.vocab, 4, 512)
    from _report import machine_description, write_section

    load = os.getloadavg()[0]
    results = {}
    for title, variant in VARIANTS.items():
        command = [sys.executable, __file__, "--child", variant, str(vocab), str(batch), str(length), str(args.threads)]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=HERE.parent)
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        print(title, results[variant], flush=True)
    tokens = batch * (length - 1)
    logits_mb = tokens * vocab * 4 / MB
    base = results["trl"]
    rows = [
        f"| {title} | {r['loss']:.6f} | {r['extra_peak'] / MB:,.0f} MiB ({r['extra_peak'] / base['extra_peak']:.2f}×) "
        f"| {r['peak_rss'] / MB:,.0f} MiB | {r['seconds']:.2f} s |"
        for title, variant in VARIANTS.items()
        for r in [results[variant]]
    ]
    markdown = "\n".join(
        [
            "## GKD training step, fused against unfused (`benchmarks/gkd_memory.py`)",
            "",
            f"Machine: {machine_description()}; {args.threads} torch thread(s).",
            "",
            f"GPT-2 student and teacher (2 layers, n_embd 64), V = {vocab:,}, {batch} × {length} tokens "
            f"({tokens:,} predictions; one float32 logits tensor is {logits_mb:,.0f} MiB), β = 0.5, T = 1, "
            "off-policy: one forward of both models, the loss and backward, each variant in a fresh process. "
            "*Extra peak*: the most torch's allocator held during the step beyond what it held before "
            "(the ratio is to TRL's); *peak RSS*: the process's high-water mark over its size before the first "
            "step; time: best of 3 steps.",
            "",
            "| trainer | loss, first step | extra peak | peak RSS | time per step |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"1-minute load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (the machine is "
            "shared: the times are indicative, the memory figures are not affected).",
        ]
    )
    print(markdown)
    print(json.dumps({"vocab": vocab, "batch": batch, "length": length, "results": results}))
    if not args.quick:
        print(f"wrote the `gkd_memory` section of {write_section('gkd_memory', markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
