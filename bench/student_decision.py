"""Is the student's gap to the teacher on gold labels a decision-threshold problem? (issue 13)

    python bench/student_decision.py          # the shipped default student; writes bench/results/gold/student-decision.md

The student under-says "yes" on the gold texts (yes-rate 0.059 against the calibrated teacher's 0.084). If that
came from a decision threshold the student learned wrong, moving its threshold so that its yes-rate matches the
teacher's on the texts it was trained on (no gold labels used) would close the gap. Three decision rules are scored
on the gold pairs (pooled, ambiguous pairs left out, as `qaemb-fast eval gold` does):

  - P > 0.5 (what the student uses);
  - one global logit offset, chosen so that the student's yes-rate on its training texts equals the teacher's there;
  - a threshold per question, chosen the same way per question (quantile matching).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    from scipy.optimize import brentq
    from sklearn.metrics import balanced_accuracy_score

    from distill.labelled_dataset import load_labelled_dataset
    from evaluation.gold import load_gold_set
    from qaemb_fast.embedder import QAEmbedder
    from training.data import split_by_document

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default=None)
    p.add_argument("--labels", default=str(ROOT / "checkpoints" / "default-labels"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gold" / "student-decision.md"))
    args = p.parse_args(argv)

    emb = QAEmbedder.from_pretrained(args.student, precision="fp32")
    ds, _, _ = load_labelled_dataset(args.labels)
    train = split_by_document(ds["doc_id"], 0.1, 0.1, 0)["train"]
    teacher = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)[train] > 0.5
    student = emb.encode([ds["text"][i] for i in train], batch_size=64)
    texts, questions, labels, ambiguous = load_gold_set()
    if list(questions) != emb.questions:
        raise SystemExit("the student does not answer the gold set's questions")
    gold = emb.encode(list(texts))
    keep = ~ambiguous

    def logit(p):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p)

    rate = teacher.mean(0)
    tau = np.array([np.quantile(student[:, k], 1 - r) if r > 0 else 1.0 for k, r in enumerate(rate)])
    offset = brentq(lambda s: (logit(student) + s > 0).mean() - teacher.mean(), -5, 5)
    rules = {
        "P > 0.5 (the student's rule)": gold > 0.5,
        f"global logit offset {offset:+.3f} (yes-rate matched on training texts)": logit(gold) + offset > 0,
        "per-question threshold (yes-rate matched per question on training texts)": gold > tau[None],
    }
    lines = [
        f"Student `{args.student or 'checkpoints/default'}` on the {int(keep.sum())} unambiguous gold pairs "
        f"(bench/student_decision.py). On the {len(train)} default-corpus texts it trained on, the student says yes on "
        f"{(student > 0.5).mean():.3f} of pairs, the teacher on {teacher.mean():.3f}.",
        "",
        "| decision rule | bal. acc. | accuracy | yes-rate (true " + f"{labels[keep].mean():.3f}) |",
        "|---|---:|---:|---:|",
    ]
    for name, decision in rules.items():
        y, d = labels[keep], decision[keep]
        lines.append(f"| {name} | {balanced_accuracy_score(y, d):.3f} | {(y == d).mean():.3f} | {d.mean():.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
