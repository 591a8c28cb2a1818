"""Teacher labelling speed: ours (prefix KV reuse + last-position head) vs the reference way, side by side.

The reference way is imodelsX's `QAEmb`: one full prompt per (text, question) pair through
`generate(max_new_tokens=1)` in padded batches, answer = "yes" in the generated token. We give the reference
every advantage ours has where it can take it (same model, same dtype, batched), so the ratio measures the
method, not the set-up.

    python bench/bench_teacher.py                      # default teacher, 6 texts x 24 questions
    python bench/bench_teacher.py --teacher smollm2-135m-instruct --texts 4 --questions 8

Rows: reference (the paper's prompt, as imodelsX sends it), ours with that same prompt (the method alone), ours with
the default prompt (instruction and the paper's few-shot turns in the cached prefix). Agreement: our P(yes) against the reference's binary answers (ROC-AUC, and accuracy of
P > 0.5), on the same pairs.

The machine is recorded beside every figure (CPU model and the flags that decide the fast path, threads, device,
dtype), with its measured matmul roofline in that dtype (a large square matmul, GFLOP/s) and each row's fraction of
it: pairs/s x FLOPs per pair, where FLOPs per pair count the tokens that row really runs through the model
(2 x non-embedding parameters per token; attention over the cache is left out, so the fraction is a lower bound).
`--labelling-job` times ours the way a labelling job runs, every question of the default set per text (the prompt
head amortised over 109 questions), and skips the slow reference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


@torch.inference_mode()
def reference_answers(teacher, texts, questions, batch_size=16) -> np.ndarray:
    """imodelsX's way: full prompts, left-padded batches, generate one token, string-match 'yes'."""
    tok = teacher.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prompts = [teacher.full_prompt(t, q) for t in texts for q in questions]
    answers = []
    for i in range(0, len(prompts), batch_size):
        batch = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        out = teacher.model.generate(
            **batch.to(teacher.device), max_new_tokens=1, do_sample=False, pad_token_id=tok.pad_token_id
        )
        decoded = tok.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        answers += ["yes" in d.lower() for d in decoded]
    return np.array(answers, dtype=np.float32).reshape(len(texts), len(questions))


def machine() -> dict:
    """The CPU (model, the flags that decide the fast path), threads, and the GPU if one is used."""
    import platform

    info = {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
        info["cpu_flags"] = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"})
    except (OSError, StopIteration):
        info["cpu_flags"] = []
    info["cpu_cores"] = __import__("os").cpu_count()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def matmul_roofline(dtype, device="cpu", n: int = 2048, seconds: float = 3.0) -> float:
    """Measured GFLOP/s of an n x n matmul in `dtype` on `device` (the best of repeated runs)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def flops_per_pair_ours(teacher, texts, questions, batch_size: int) -> float:
    """Model FLOPs per pair of our fast path: each text's tokens once, then every question's suffix padded to its
    batch's longest (suffixes sorted by length, as `Teacher.answer_text` batches them)."""
    params = sum(p.numel() for n, p in teacher.model.named_parameters() if "embed_tokens" not in n)
    tokens = 0
    for text in texts:
        tokens += len(teacher.text_ids(text, teacher.text_token_limit(questions)))
        for rows in teacher.suffix_batches(questions, batch_size):
            tokens += len(rows) * max(len(teacher.suffix_ids(questions[j])) for j in rows)
    return 2 * params * tokens / (len(texts) * len(questions))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv=None):
    from sklearn.metrics import roc_auc_score

    from distill.corpus import load_corpus_spec
    from distill.teacher import PromptConfig, Teacher
    from qaemb_fast.questions import QuestionSet

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="qwen2.5-coder-1.5b-instruct")
    p.add_argument("--texts", type=int, default=6, help="number of texts (from the default corpus)")
    p.add_argument("--questions", type=int, default=24, help="number of questions (spread over the default set)")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", default=None, help="JSON output (default bench/results/teacher[_labelling_job].json)")
    p.add_argument("--labelling-job", action="store_true", help="time ours only, on all 109 questions per text")
    args = p.parse_args(argv)
    args.out = args.out or f"bench/results/teacher{'_labelling_job' if args.labelling_job else ''}.json"
    if args.labelling_job:
        return labelling_job(args)

    texts = [it.text for it in load_corpus_spec("builtin:default")[: args.texts]]
    full = QuestionSet.default()
    step = max(1, len(full) // args.questions)
    questions = full.subset(list(range(0, len(full), step))[: args.questions])
    n_pairs = len(texts) * len(questions)

    paper = Teacher.from_pretrained(
        args.teacher, questions=questions, prompt=PromptConfig("paper", few_shot="none"), dtype=args.dtype
    )
    default = Teacher(paper.model, paper.tokenizer, questions=questions, prompt=PromptConfig())
    paper.encode(texts[:1], questions=[0])  # warm-up (first-call allocations)

    ref, t_ref = timed(lambda: reference_answers(paper, texts, list(questions)))
    ours_paper, t_paper = timed(lambda: paper.encode(texts, batch_size=16))
    ours_default, t_default = timed(lambda: default.encode(texts, batch_size=16))

    def agreement(p_yes):
        y = ref.ravel()
        auc = roc_auc_score(y, p_yes.ravel()) if 0 < y.mean() < 1 else float("nan")
        return auc, float(((p_yes.ravel() > 0.5) == (y > 0.5)).mean())

    rows = [
        ("reference: full prompt per pair, generate(max_new_tokens=1), paper prompt", t_ref, None),
        ("ours: prefix KV reuse + last-position head, paper prompt", t_paper, agreement(ours_paper)),
        ("ours: same, default prompt (+ few-shot turns)", t_default, agreement(ours_default)),
    ]
    result = {
        "teacher": args.teacher,
        "dtype": str(paper.dtype),
        "texts": len(texts),
        "questions": len(questions),
        "pairs": n_pairs,
        "torch_threads": torch.get_num_threads(),
        "reference_yes_rate": float(ref.mean()),
        "rows": [
            {
                "method": name,
                "seconds": t,
                "pairs_per_s": n_pairs / t,
                "speedup_vs_reference": t_ref / t,
                "auc_vs_reference": None if a is None else a[0],
                "accuracy_vs_reference": None if a is None else a[1],
            }
            for name, t, a in rows
        ],
    }
    print(
        f"\nteacher {args.teacher} ({result['dtype']}), {len(texts)} texts x {len(questions)} questions = {n_pairs} pairs"
    )
    print("\n| method | pairs/s | speed-up | AUC vs reference | agreement (P>0.5) |\n|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        auc = "–" if r["auc_vs_reference"] is None else f"{r['auc_vs_reference']:.3f}"
        acc = "–" if r["accuracy_vs_reference"] is None else f"{r['accuracy_vs_reference']:.1%}"
        print(f"| {r['method']} | {r['pairs_per_s']:.1f} | {r['speedup_vs_reference']:.2f}x | {auc} | {acc} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten to {args.out}")


def labelling_job(args) -> dict:
    """Ours as a labelling job runs: every default question per text, on this machine, with its roofline."""
    from distill.corpus import load_corpus_spec
    from distill.teacher import PromptConfig, Teacher
    from qaemb_fast.questions import QuestionSet

    texts = [it.text for it in load_corpus_spec("builtin:default")[: args.texts]]
    questions = QuestionSet.default()
    teacher = Teacher.from_pretrained(args.teacher, questions=questions, prompt=PromptConfig(), dtype=args.dtype)
    teacher.encode(texts[:1], questions=[0])  # warm-up
    _, seconds = timed(lambda: teacher.encode(texts, batch_size=16))
    pairs_per_s = len(texts) * len(questions) / seconds
    flops = flops_per_pair_ours(teacher, texts, list(questions), 16)
    roofline = matmul_roofline(teacher.dtype, str(teacher.device))
    result = {
        "teacher": args.teacher,
        "machine": machine(),
        "device": str(teacher.device),
        "dtype": str(teacher.dtype).removeprefix("torch."),
        "texts": len(texts),
        "questions": len(questions),
        "pairs_per_s": pairs_per_s,
        "gflop_per_pair": flops / 1e9,
        "roofline_gflop_per_s": roofline,
        "fraction_of_roofline": pairs_per_s * flops / 1e9 / roofline,
    }
    m = result["machine"]
    print(
        f"\n{m['cpu']} ({', '.join(m['cpu_flags']) or 'no avx2'}; {m['torch_threads']} threads"
        f"{'; ' + m['gpu'] if 'gpu' in m else ''}), {result['device']} {result['dtype']}: {pairs_per_s:.2f} pairs/s "
        f"({len(texts)} texts x {len(questions)} questions), {flops / 1e9:.1f} GFLOP per pair, matmul roofline "
        f"{roofline:.0f} GFLOP/s -> {result['fraction_of_roofline']:.0%} of roofline"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
