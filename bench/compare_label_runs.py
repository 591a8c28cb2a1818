"""Agreement between two labelling runs on the chunks both have: same texts, answers compared.

Why: shards of one job may run on different machines (CPU here, a GPU elsewhere) and in bf16 their answers differ
by rounding. This measures how much, on the chunks that both runs labelled, before their chunks are mixed.

    python bench/compare_label_runs.py checkpoints/default-labels bench/labels/default-gpu-overlap
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distill.label import PARTS_DIR, chunk_path, read_chunk, read_chunk_file, setup_differences
from distill.labelled_dataset import PROVENANCE_FILE


def common_chunks(a: Path, b: Path) -> list[int]:
    names = {p.name for p in (a / PARTS_DIR).glob("chunk-*.npz")} & {
        p.name for p in (b / PARTS_DIR).glob("chunk-*.npz")
    }
    return sorted(int(n[len("chunk-") : -len(".npz")]) for n in names)


def compare(a, b) -> dict:
    a, b = Path(a), Path(b)
    pa, pb = (json.loads((p / PROVENANCE_FILE).read_text()) for p in (a, b))
    diffs = setup_differences(pa, pb)
    if diffs:
        raise SystemExit(f"the runs differ in setup ({', '.join(diffs)}): not the same labelling job")
    chunks = common_chunks(a, b)
    if not chunks:
        raise SystemExit("no chunk is labelled in both runs")
    x, y = [], []
    for k in chunks:
        texts, answers, _ = read_chunk_file(chunk_path(a, k))
        x.append(answers)
        y.append(read_chunk(b, k, expected_texts=texts)[0])  # raises if the chunk holds other texts
    x, y = np.concatenate(x), np.concatenate(y)
    diff = np.abs(x - y)
    return {
        "chunks": len(chunks),
        "texts": int(x.shape[0]),
        "questions": int(x.shape[1]),
        "pearson_r": float(np.corrcoef(x.ravel(), y.ravel())[0, 1]),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
        "yes_no_agreement": float(((x > 0.5) == (y > 0.5)).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a", help="a `qaemb-fast label` output folder")
    ap.add_argument("run_b", help="another output folder of the same job (same teacher, prompt, corpus, chunk size)")
    args = ap.parse_args()
    r = compare(args.run_a, args.run_b)
    print(
        f"{r['chunks']} chunks in both ({r['texts']} texts x {r['questions']} questions): Pearson r "
        f"{r['pearson_r']:.4f}, mean |diff| {r['mean_abs_diff']:.4f}, max |diff| {r['max_abs_diff']:.4f}, "
        f"yes/no agreement {r['yes_no_agreement']:.2%}"
    )


if __name__ == "__main__":
    main()
