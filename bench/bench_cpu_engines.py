"""Teacher engines on the CPU, side by side in one run: which is fastest at labelling, and does it agree?

The same texts and the same questions (all 109 default questions per text, as a labelling job asks them) through:
  * torch fp32: our fast path (prefix KV reuse, last-position head), the reference every other row is judged by;
  * torch bf16: the same, where the CPU has native bf16 (skipped elsewhere: emulated bf16 is ~150x slower);
  * torch int8: torch's dynamic int8 quantisation of the linear layers (weights int8 per tensor or per output
    channel, activations quantised per call), on the fp32 model: all of them, or all but the MLP down projections
    and the LM head;
  * llama.cpp: the GGUF the teacher ships as, 4-bit weights, through `distill/llama_cpp_engine.py` (if the optional
    llama-cpp-python is installed: `pip install -e ".[cpu-fast]"`).

Agreement with the fp32 reference: ROC-AUC of the row's P(yes) against the reference's yes/no (P > 0.5), and the
mean and largest |P(yes) - reference P(yes)|. The issue's bar for adopting an engine: ROC-AUC >= 0.99 and mean
|diff| <= 0.03.

    python bench/bench_cpu_engines.py                  # this CPU as it is
    python bench/bench_cpu_engines.py --isa avx2       # this CPU limited to AVX2 (see below)

--isa avx2 runs torch as on an AVX2-only CPU: it sets ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and
MKL_ENABLE_INSTRUCTIONS=AVX2 before torch loads, and int8 runs on the oneDNN backend (fbgemm has no such switch).
llama.cpp runs whatever it was built for: its build flags are recorded (build it for AVX2 with
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"). It is an emulation of such a CPU, not
one: the clock, caches and memory are this machine's, and the JSON says so.

The machine (CPU model and flags, threads), the measured fp32 matmul roofline and each row's fraction of it are
recorded: FLOPs per pair count the tokens each engine really runs (llama.cpp pads nothing; torch pads a batch to its
longest suffix), 2 x non-embedding parameters per token, in fp32-equivalent FLOPs for the quantised rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import warnings
from pathlib import Path

AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="qwen2.5-coder-1.5b-instruct", help="an offline teacher (it has a GGUF)")
    p.add_argument("--texts", type=int, default=2, help="texts from the default corpus (x 109 questions each)")
    p.add_argument("--batch-size", type=int, default=16, help="question suffixes per forward pass (every engine)")
    p.add_argument("--isa", choices=("native", "avx2"), default="native", help="limit torch to AVX2 (see above)")
    p.add_argument("--engines", default="fp32,bf16,int8,llama.cpp", help="comma-separated rows to run")
    p.add_argument("--out", default=None, help="JSON output (default bench/results/cpu_engines_<isa>.json)")
    args = p.parse_args(argv)
    if args.isa == "avx2":
        if "torch" in sys.modules:
            raise SystemExit("--isa avx2 must be set before torch is imported: run this file as a script")
        os.environ.update(AVX2_ENV)
    return run(args)


def run(args) -> dict:
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from bench.bench_teacher import flops_per_pair_ours, machine, matmul_roofline, timed
    from distill.corpus import load_corpus_spec
    from distill.llama_cpp_engine import LlamaCppEngine, llama_cpp_available, llama_cpp_build
    from distill.teacher import Teacher, teacher_gguf
    from qaemb_fast.device import cpu_supports_bf16

    engines = args.engines.split(",")
    texts = [it.text for it in load_corpus_spec("builtin:default")[: args.texts]]
    reference = Teacher.from_pretrained(args.teacher, dtype="fp32", device="cpu", engine="torch")
    questions = reference.questions
    n_pairs = len(texts) * len(questions)
    params = sum(p.numel() for n, p in reference.model.named_parameters() if "embed_tokens" not in n)
    torch_flops = flops_per_pair_ours(reference, texts, questions, args.batch_size)
    unpadded_tokens = sum(
        len(reference.text_ids(t, reference.text_token_limit())) + sum(len(reference.suffix_ids(q)) for q in questions)
        for t in texts
    )
    unpadded_flops = 2 * params * unpadded_tokens / n_pairs
    roofline = matmul_roofline(torch.float32)
    native_bf16 = cpu_supports_bf16() and args.isa == "native"

    def time_teacher(teacher):
        teacher.encode(texts[:1], questions=[0])  # warm-up: the prompt head, first-call allocations
        return timed(lambda: teacher.encode(texts, batch_size=args.batch_size))

    rows = []

    def add(name, answers, seconds, flops, note=""):
        rows.append({"engine": name, "answers": answers, "seconds": seconds, "flops_per_pair": flops, "note": note})
        print(f"  {name}: {n_pairs / seconds:.2f} pairs/s", flush=True)

    ref_answers, ref_seconds = time_teacher(reference)
    add("torch fp32 (reference)", ref_answers, ref_seconds, torch_flops)
    if "bf16" in engines:
        if native_bf16:
            bf16 = Teacher(reference.model.to(torch.bfloat16), reference.tokenizer)
            answers, seconds = time_teacher(bf16)
            add("torch bf16", answers, seconds, torch_flops)
            reference.model.float()
        else:
            print("  torch bf16: skipped (no native bf16 here: it would be emulated)")
    if "int8" in engines:
        if args.isa == "avx2":
            torch.backends.quantized.engine = "onednn"  # fbgemm picks AVX-512 kernels whatever ISA is set
        quant = torch.ao.quantization
        linears = [n for n, m in reference.model.named_modules() if isinstance(m, torch.nn.Linear)]
        # Weights per tensor (quantize_dynamic's default) or per output channel; activations per call, per tensor.
        # The third keeps the layers whose inputs carry this model's activation outliers (the MLP's down projection)
        # and the LM head in fp32: the answers the first two lose come back, at a third of the speed-up.
        schemes = {
            "per-tensor weights": {n: quant.default_dynamic_qconfig for n in linears},
            "per-channel weights": {n: quant.per_channel_dynamic_qconfig for n in linears},
            "per-channel, down_proj + lm_head in fp32": {
                n: quant.per_channel_dynamic_qconfig for n in linears if not n.endswith(("down_proj", "lm_head"))
            },
        }
        for scheme, spec in schemes.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated (see the README)
                model = quant.quantize_dynamic(reference.model, spec, dtype=torch.qint8)
            answers, seconds = time_teacher(Teacher(model, reference.tokenizer))
            name = f"torch int8 dynamic, {scheme} ({torch.backends.quantized.engine})"
            add(name, answers, seconds, torch_flops)
            del model
            gc.collect()  # each quantized copy holds GBs: free it before the next (the 1.5B OOMs 24 GB otherwise)
    if "llama.cpp" in engines:
        if llama_cpp_available():
            engine = LlamaCppEngine(teacher_gguf(args.teacher))
            teacher = Teacher(reference.model, reference.tokenizer, engine=engine)
            answers, seconds = time_teacher(teacher)
            add(f"llama.cpp, {Path(teacher_gguf(args.teacher)).name}", answers, seconds, unpadded_flops)
            rows[-1]["llama_cpp_build"] = llama_cpp_build()
        else:
            print('  llama.cpp: skipped (pip install -e ".[cpu-fast]")')

    y = ref_answers.ravel() > 0.5
    for row in rows:
        a = row.pop("answers").ravel()
        row["pairs_per_s"] = n_pairs / row["seconds"]
        row["speedup_vs_fp32"] = ref_seconds / row["seconds"]
        row["auc_vs_fp32_yes_no"] = float(roc_auc_score(y, a)) if 0 < y.mean() < 1 else None
        row["mean_abs_diff"] = float(np.abs(a - ref_answers.ravel()).mean())
        row["max_abs_diff"] = float(np.abs(a - ref_answers.ravel()).max())
        row["agrees"] = bool(row["auc_vs_fp32_yes_no"] and row["auc_vs_fp32_yes_no"] >= 0.99)
        row["agrees"] = row["agrees"] and row["mean_abs_diff"] <= 0.03
        row["gflop_per_pair"] = row.pop("flops_per_pair") / 1e9
        row["fraction_of_fp32_roofline"] = row["pairs_per_s"] * row["gflop_per_pair"] / roofline
    result = {
        "teacher": args.teacher,
        "machine": machine(),
        "isa": args.isa,
        "isa_env": {k: os.environ[k] for k in AVX2_ENV if k in os.environ},
        "emulated": args.isa != "native",
        "texts": len(texts),
        "questions": len(questions),
        "pairs": n_pairs,
        "batch_size": args.batch_size,
        "fp32_roofline_gflop_per_s": roofline,
        "reference_yes_rate": float(y.mean()),
        "rows": rows,
    }
    m = result["machine"]
    print(
        f"\n{m['cpu']} ({', '.join(m['cpu_flags'])}; {m['torch_threads']} threads"
        f"{'; torch limited to AVX2 (emulated AVX2-only CPU)' if result['emulated'] else ''}), {args.teacher}, "
        f"{len(texts)} texts x {len(questions)} questions = {n_pairs} pairs, fp32 matmul roofline {roofline:.0f} GFLOP/s"
    )
    print(
        "\n| engine | pairs/s | vs fp32 | ROC-AUC vs fp32 yes/no | mean / max abs diff | agrees | GFLOP per pair "
        "| fraction of fp32 roofline |\n|---|---:|---:|---:|---:|---|---:|---:|"
    )
    for r in rows:
        auc = "–" if r["auc_vs_fp32_yes_no"] is None else f"{r['auc_vs_fp32_yes_no']:.4f}"
        print(
            f"| {r['engine']} | {r['pairs_per_s']:.2f} | {r['speedup_vs_fp32']:.2f}x | {auc} | "
            f"{r['mean_abs_diff']:.4f} / {r['max_abs_diff']:.3f} | {'yes' if r['agrees'] else 'no'} | "
            f"{r['gflop_per_pair']:.1f} | {r['fraction_of_fp32_roofline']:.0%} |"
        )
    out = Path(args.out or f"bench/results/cpu_engines_{args.isa}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten to {out}")
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
