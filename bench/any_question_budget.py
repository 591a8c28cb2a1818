"""Does the question head get better with more teacher labels? (issue 14: "a modest budget already gives a
measurable model, and more labels improve it")

    python bench/any_question_budget.py        # writes bench/results/any_question/budget.md

The question head trains on a frozen encoder (`qaemb-fast train --question-head-width`), so its inputs can be
computed once: the default student's pooled text embeddings and question embeddings. On them this script fits the
same `QuestionHead` with the same objective (BCE on the asked pairs, AdamW, linear decay) on the default labels plus
growing prefixes of the pool labels (`bench/labels/pool-train`, texts in shuffled order), and scores each against
the teacher on held-out texts: the pool's held-out questions (`bench/labels/pool-eval`) and the trained default
questions (the default labels' test documents), both answered by the question head.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    from distill.label import answers_by_text
    from distill.labelled_dataset import load_labelled_dataset
    from evaluation.any_question import pooled_texts
    from qaemb_fast.student import QuestionHead, StudentModel
    from training.data import split_by_document
    from training.module import question_metrics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default=str(ROOT / "checkpoints" / "default"), help="the frozen student")
    p.add_argument("--pool-labels", default=str(ROOT / "bench" / "labels" / "pool-train" / "teacher-answers"))
    p.add_argument("--heldout-labels", default=str(ROOT / "bench" / "labels" / "pool-eval" / "teacher-answers"))
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "any_question"))
    args = p.parse_args(argv)

    model = StudentModel.from_pretrained(args.student)
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    default_answers = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)
    pool, held = answers_by_text(args.pool_labels), answers_by_text(args.heldout_labels)
    pool_texts, held_texts = list(pool), list(held)
    pool_answers = np.stack([pool[t] for t in pool_texts])
    held_answers = np.stack([held[t] for t in held_texts])

    with torch.no_grad():  # not inference_mode: these tensors feed the training below
        default_pooled = pooled_texts(model, list(ds["text"]))
        pool_pooled = pooled_texts(model, pool_texts)
        held_pooled = pooled_texts(model, held_texts)
        train_questions = list(model.questions) + list(pool.questions)
        q_train = model.question_embeddings(train_questions).float()
        q_default, q_held = q_train[: model.num_questions], model.question_embeddings(list(held.questions)).float()

    def fit(n_pool: int):
        torch.manual_seed(0)
        texts = torch.cat([default_pooled[split["train"]], pool_pooled[:n_pool]])
        targets = np.full((len(texts), len(train_questions)), np.nan, dtype=np.float32)
        targets[: len(split["train"]), : model.num_questions] = default_answers[split["train"]]
        targets[len(split["train"]) :, model.num_questions :] = pool_answers[:n_pool]
        targets = torch.from_numpy(targets)
        head = QuestionHead(texts.shape[1], args.width)
        optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
        batches = -(-len(texts) // 64)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / (args.epochs * batches))
        for _ in range(args.epochs):
            for rows in torch.randperm(len(texts)).split(64):
                logits = head(texts[rows], head.project_questions(q_train))
                asked = ~torch.isnan(targets[rows])
                loss = F.binary_cross_entropy_with_logits(logits[asked], targets[rows][asked])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        return head.eval()

    def score(head, pooled, questions, answers):
        with torch.inference_mode():
            preds = torch.sigmoid(head(pooled, head.project_questions(questions))).numpy()
        m = question_metrics(preds, answers)
        return float(np.nanmean(m["auc"])), float(np.nanmean(m["pearson"]))

    rows = []
    for fraction in args.fractions:
        n_pool = int(round(fraction * len(pool_texts)))
        head = fit(n_pool)
        held_auc, held_r = score(head, held_pooled, q_held, held_answers)
        seen_auc, seen_r = score(head, default_pooled[split["test"]], q_default, default_answers[split["test"]])
        pairs = int((~np.isnan(pool_answers[:n_pool])).sum())
        rows.append({"pool_texts": n_pool, "pool_pairs": pairs, "heldout_auc": held_auc, "heldout_pearson": held_r,
                     "trained_auc": seen_auc, "trained_pearson": seen_r})  # fmt: skip
        print(rows[-1], flush=True)

    lines = [
        f"Question head (width {args.width}, {args.epochs} epochs) on the frozen default student, trained on the default "
        "labels (109 questions x 2,640 training texts) plus the first N texts of the pool labels "
        f"({len(pool.questions)} questions, a sample per text); scored against the teacher on held-out texts "
        "(bench/any_question_budget.py).",
        "",
        "| pool texts | pool pairs | held-out questions ROC-AUC | held-out questions Pearson r | trained questions "
        "ROC-AUC (question head) | trained questions Pearson r (question head) |",
        "|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['pool_texts']} | {r['pool_pairs']:,} | {r['heldout_auc']:.3f} | {r['heldout_pearson']:.3f} | "
            f"{r['trained_auc']:.3f} | {r['trained_pearson']:.3f} |"
            for r in rows
        ],
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "budget.md").write_text("\n".join(lines) + "\n")
    (out / "budget.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
