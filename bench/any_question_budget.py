"""Does the question head get better with more teacher labels? (issue 14: "a modest budget already gives a
measurable model, and more labels improve it")

    python bench/any_question_budget.py --student DIR     # writes bench/results/any_question/budget.md

DIR: a student whose encoder never trained on the pool labels (the shipped default's was tuned on them; the README
says which student the committed curve comes from).

The question head trains on a frozen encoder (`qaemb-fast train --question-head-width`), so its inputs can be
computed once: the default student's pooled text embeddings, token states (at the layer the shipped question head
reads) and question embeddings. On them this script fits a `QuestionHead` shaped like the shipped one (width,
attention heads, layer: from the student's config) with the same objective (BCE on the asked pairs, AdamW, linear
decay) on the default labels plus growing prefixes of the pool labels (`bench/labels/pool-train`, texts in shuffled
order), and scores each against the teacher on held-out texts: the pool's held-out questions
(`bench/labels/pool-eval`) and the trained default questions (the default labels' test documents), both answered
by the question head.
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
    from evaluation.any_question import head_answers, padded, token_states
    from qaemb_fast.student import QuestionHead, StudentModel
    from training.data import split_by_document
    from training.module import question_metrics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--student",
        default=str(ROOT / "checkpoints" / "default"),
        help="a student whose encoder never trained on the pool labels (not one tuned with --tune-encoder on them)",
    )
    p.add_argument("--pool-labels", default=str(ROOT / "bench" / "labels" / "pool-train" / "teacher-answers"))
    p.add_argument("--heldout-labels", default=str(ROOT / "bench" / "labels" / "pool-eval" / "teacher-answers"))
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "any_question"))
    args = p.parse_args(argv)

    model = StudentModel.from_pretrained(args.student)
    if model.config.metrics.get("training", {}).get("hyperparameters", {}).get("tune_encoder"):
        raise SystemExit(
            f"{args.student}: its encoder trained with the question head (--tune-encoder) on the pool labels, so the "
            "curve would not start from zero pool labels; pass a frozen-encoder student with --student (the README "
            "names one)"
        )
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    default_answers = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)
    pool, held = answers_by_text(args.pool_labels), answers_by_text(args.heldout_labels)
    pool_texts, held_texts = list(pool), list(held)
    pool_answers = np.stack([pool[t] for t in pool_texts])
    held_answers = np.stack([held[t] for t in held_texts])

    cfg = model.config
    width, heads, layer = cfg.question_head_width or 256, cfg.question_head_attention_heads, cfg.question_head_layer
    default_states, default_pooled = token_states(model, list(ds["text"]), [layer])
    default_states = default_states[layer]
    pool_states, pool_pooled = token_states(model, pool_texts, [layer])
    pool_states = pool_states[layer]
    held_states, held_pooled = token_states(model, held_texts, [layer])
    held_states = held_states[layer]
    with torch.inference_mode():
        train_questions = list(model.questions) + list(pool.questions)
        q_train = model.question_embeddings(train_questions).float()
        q_held = model.question_embeddings(list(held.questions)).float()
    q_train, q_held = q_train.clone(), q_held.clone()  # inference tensors cannot feed autograd
    q_default = q_train[: model.num_questions]

    def fit(n_pool: int):
        # Batches of one source each, every text asked only its own questions (as the probe does): the default texts
        # all 109, a pool text its 24 (a (B, 24, width) question tensor). The loss is the same as training's (BCE over
        # the asked pairs), at a fraction of the cost of scoring every text against all 930 questions.
        torch.manual_seed(0)
        train = list(split["train"])
        default_questions = torch.arange(model.num_questions)
        pool_asked = [np.flatnonzero(~np.isnan(row)) for row in pool_answers[:n_pool]]
        head = QuestionHead(default_pooled.shape[1], width, heads)
        optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
        generator = np.random.default_rng(0)
        n_batches = -(-len(train) // 64) + -(-n_pool // 64)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / (args.epochs * n_batches))
        for _ in range(args.epochs):
            batches = [("default", b) for b in np.array_split(generator.permutation(train), -(-len(train) // 64))]
            if n_pool:
                batches += [("pool", b) for b in np.array_split(generator.permutation(n_pool), -(-n_pool // 64))]
            generator.shuffle(batches)
            for source, rows in batches:
                projected = head.project_questions(q_train)
                if source == "default":
                    tokens, mask = padded([default_states[i] for i in rows])
                    pooled, targets = default_pooled[rows], torch.from_numpy(default_answers[rows])
                    logits = head(pooled, projected[default_questions], tokens, mask)
                else:
                    tokens, mask = padded([pool_states[i] for i in rows])
                    asked = np.stack([pool_asked[i] for i in rows])  # (B, 24)
                    targets = torch.from_numpy(np.take_along_axis(pool_answers[rows], asked, axis=1))
                    logits = head(
                        pool_pooled[rows], projected[torch.from_numpy(model.num_questions + asked)], tokens, mask
                    )
                loss = F.binary_cross_entropy_with_logits(logits, targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        return head.eval()

    def score(head, states, pooled, questions, answers):
        m = question_metrics(head_answers(head, states, pooled, questions), answers)
        return float(np.nanmean(m["auc"])), float(np.nanmean(m["pearson"]))

    rows = []
    for fraction in args.fractions:
        n_pool = int(round(fraction * len(pool_texts)))
        head = fit(n_pool)
        held_auc, held_r = score(head, held_states, held_pooled, q_held, held_answers)
        test = list(split["test"])
        seen_auc, seen_r = score(
            head, [default_states[i] for i in test], default_pooled[test], q_default, default_answers[test]
        )
        pairs = int((~np.isnan(pool_answers[:n_pool])).sum())
        rows.append({"pool_texts": n_pool, "pool_pairs": pairs, "heldout_auc": held_auc, "heldout_pearson": held_r,
                     "trained_auc": seen_auc, "trained_pearson": seen_r})  # fmt: skip
        print(rows[-1], flush=True)

    lines = [
        f"Question head (width {width}, {heads} attention heads over layer {layer}, {args.epochs} epochs) on the frozen "
        "default student, trained on the default "
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
