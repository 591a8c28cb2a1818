"""Does a question head that looks at the text's tokens answer unseen questions better than one that sees only the
pooled text? (issue 14; a probe run before changing the shipped head)

    python bench/probe_attention_head.py --d3 ../shared/data/d3 --kinds pooled tokens tokens:layer=4:width=256
    # writes bench/results/question_heads/attention.md (variants: tokens[:layer=L][:width=W][:heads=H][:epochs=E])

Both heads train on the frozen default student's features, on the same data (default labels' training documents +
the pool training labels) with the same objective, and are scored on the same held-out sets:
  - "pooled": `QuestionHead` without attention heads (MLP over [t, q, t*q] of the mean-pooled text t and the
    question q);
  - "tokens": `QuestionHead` with attention heads: the question also attends over the text's token states, and the
    MLP sees the attended vector a as well: [t, q, t*q, a, a*q]. A "mention X" question can then look for X's tokens instead of hoping
    that the mean of 128 token states still shows them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


LAYERS = (3, 4, 5, 6)


def main(argv=None):
    from distill.label import answers_by_text
    from distill.labelled_dataset import load_labelled_dataset
    from evaluation.any_question import head_answers, padded, token_states
    from evaluation.d3 import load_d3_tasks
    from qaemb_fast.student import QuestionHead, StudentModel
    from training.data import split_by_document
    from training.module import question_metrics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d3", required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["pooled", "tokens"],
        help="pooled, or tokens[:layer=L][:width=W][:heads=H][:epochs=E]",
    )
    p.add_argument("--d3-per-task", type=int, default=300, help="D3 texts per task (seeded sample)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    model = StudentModel.from_pretrained(ROOT / "checkpoints" / "default")
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    default_answers = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)
    pool = answers_by_text(ROOT / "bench/labels/pool-train/teacher-answers")
    held = answers_by_text(ROOT / "bench/labels/pool-eval/teacher-answers")
    pool_texts, held_texts = list(pool), list(held)
    pool_answers = np.stack([pool[t] for t in pool_texts])
    held_answers = np.stack([held[t] for t in held_texts])
    tasks = load_d3_tasks(args.d3)
    rng = np.random.default_rng(0)
    d3 = []
    for task in tasks:
        keep = rng.permutation(len(task.texts))[: args.d3_per_task]
        d3.append((task.question, [task.texts[i] for i in keep], task.labels[keep]))

    t0 = time.time()
    texts_all = list(ds["text"])
    def_states, def_pooled = token_states(model, texts_all, LAYERS)
    pool_states, pool_pooled = token_states(model, pool_texts, LAYERS)
    held_states, held_pooled = token_states(model, held_texts, LAYERS)
    d3_feats = [token_states(model, texts, LAYERS) for _, texts, _ in d3]
    with torch.inference_mode():
        train_questions = list(model.questions) + list(pool.questions)
        q_train = model.question_embeddings(train_questions).float()
        q_held = model.question_embeddings(list(held.questions)).float()
        q_d3 = model.question_embeddings([q for q, _, _ in d3]).float()
    q_train, q_held, q_d3 = q_train.clone(), q_held.clone(), q_d3.clone()
    print(f"features in {time.time() - t0:.0f}s", flush=True)

    # Training rows: (states, pooled, question ids (R,), targets (R,)) per text.
    nq = model.num_questions
    rows = []
    for i in split["train"]:
        rows.append(({L: def_states[L][i] for L in LAYERS}, def_pooled[i], np.arange(nq), default_answers[i]))
    for i in range(len(pool_texts)):
        asked = np.flatnonzero(~np.isnan(pool_answers[i]))
        rows.append(({L: pool_states[L][i] for L in LAYERS}, pool_pooled[i], nq + asked, pool_answers[i, asked]))

    def fit(kind, layer, width, heads, epochs):
        torch.manual_seed(0)
        head = QuestionHead(384, width, heads if kind == "tokens" else 0)
        opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
        # Batches of one source each (same R per row): default rows and pool rows apart.
        default_idx = np.arange(len(split["train"]))
        pool_idx = np.arange(len(split["train"]), len(rows))
        g = np.random.default_rng(0)
        batches_per_epoch = -(-len(default_idx) // 64) + -(-len(pool_idx) // 64)
        total = epochs * batches_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total)
        for epoch in range(epochs):
            batches = [
                b for src in (default_idx, pool_idx) for b in np.array_split(g.permutation(src), -(-len(src) // 64))
            ]
            g.shuffle(batches)
            total_loss = 0.0
            for b in batches:
                states, mask = padded([rows[j][0][layer] for j in b])
                pooled = torch.stack([rows[j][1] for j in b])
                qids = torch.from_numpy(np.stack([rows[j][2] for j in b]))
                targets = torch.from_numpy(np.stack([rows[j][3] for j in b]))
                projected = head.project_questions(q_train)[qids]
                logits = head(pooled, projected, states, mask)
                loss = F.binary_cross_entropy_with_logits(logits, targets)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total_loss += loss.item()
            print(
                f"{kind} {layer} epoch {epoch} loss {total_loss / len(batches):.4f} ({time.time() - t0:.0f}s)",
                flush=True,
            )
        return head.eval()

    from sklearn.metrics import roc_auc_score

    results = {}
    for spec in args.kinds:
        kind, *opts = spec.split(":")
        o = {"layer": 6, "width": args.width, "heads": args.heads, "epochs": args.epochs}
        o.update({k: int(v) for k, v in (x.split("=") for x in opts)})
        layer = o["layer"]
        head = fit(kind, **o)
        held_pred = head_answers(head, held_states[layer], held_pooled, q_held)
        m = question_metrics(held_pred, held_answers)
        test = list(split["test"])
        seen_pred = head_answers(head, [def_states[layer][i] for i in test], def_pooled[test], q_train[:nq])
        ms = question_metrics(seen_pred, default_answers[test])
        d3_aucs = []
        for j, (_, _, labels) in enumerate(d3):
            st, pooled = d3_feats[j]
            pred = head_answers(head, st[layer], pooled, q_d3[j : j + 1])[:, 0]
            d3_aucs.append(roc_auc_score(labels, pred))
        results[spec] = {
            "heldout_auc": float(np.nanmean(m["auc"])),
            "heldout_pearson": float(np.nanmean(m["pearson"])),
            "trained_auc": float(np.nanmean(ms["auc"])),
            "trained_pearson": float(np.nanmean(ms["pearson"])),
            "d3_auc": float(np.mean(d3_aucs)),
            "params": sum(p.numel() for p in head.parameters()),
        }
        print(spec, results[spec], flush=True)
    # Merged with earlier runs' variants (same data and seed), so several runs of a few variants each build one table.
    path = ROOT / "bench" / "results" / "question_heads" / "attention.json"
    merged = json.loads(path.read_text())["results"] if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps({"last_args": vars(args), "results": merged}, indent=1) + "\n")
    write_table(merged, path.with_suffix(".md"))


def write_table(merged: dict, path: Path) -> None:
    lines = [
        "Question heads on the frozen default student's features (`python bench/probe_attention_head.py --d3 "
        "../shared/data/d3 --kinds ...`): trained on the default labels' training documents + the pool training "
        "labels, 10 epochs; held-out questions and trained questions (answered by the question head) against the "
        "teacher on held-out texts; D3 against the gold labels (300 texts per task).",
        "",
        "`pooled`: the MLP over [text, question, product] of the mean-pooled text (the shipped head before token "
        "reading); `tokens`: the question also reads the token states. Unless a variant says otherwise: layer=6 (the "
        "last), width=128, heads=4, epochs=10.",
        "",
        "| head | held-out q. ROC-AUC | held-out q. Pearson r | trained q. ROC-AUC | trained q. Pearson r | D3 ROC-AUC | "
        "parameters |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| `{k}` | {r['heldout_auc']:.3f} | {r['heldout_pearson']:.3f} | {r['trained_auc']:.3f} | "
            f"{r['trained_pearson']:.3f} | {r['d3_auc']:.3f} | {r['params']:,} |"
            for k, r in merged.items()
        ],
    ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
