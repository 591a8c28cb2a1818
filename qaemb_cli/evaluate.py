"""`qaemb-fast eval classify | export-texts | d3 | gold | calibration`: how useful and how right are the answers?

Options come from the config dataclasses of evaluation.classify, .d3, .gold and .calibration (qaemb_cli/options.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evaluation.any_question import AnyQuestionConfig
from evaluation.calibration import CalibrationEvalConfig
from evaluation.classify import ClassifyConfig
from evaluation.d3 import D3Config
from evaluation.gold import GoldConfig
from qaemb_cli.options import add_command_group, add_config_command, add_config_options, config_from_args, require_path

CLASSIFY_DESCRIPTION = """\
The paper's simple NLP tasks on real offline data (fetched from Debian packages on first use):
  food      food reviews, 5 stars vs. other (r-cran-modeldata small_fine_foods: 4,000 train / 1,000 test)
  fortunes  the topic of a fortune quote, 6 categories of the Debian `fortunes` package (seeded 70/30 split)
Each feature set (student / teacher QA answers, bag-of-words, tf-idf, MiniLM) feeds the same logistic regression
(C by 5-fold CV); accuracy and AUC on the test split, with bootstrap intervals, and the most predictive questions.

examples:
  qaemb-fast eval classify --task food --out results/food.json
  qaemb-fast eval export-texts --task food --max-texts 300 --out food300.jsonl
  qaemb-fast label --corpus food300.jsonl --out labels/food300
  qaemb-fast eval classify --task food --max-texts 300 --teacher-labels labels/food300 --out results/food300.json
"""


TASK_FIELDS = ("task", "max_texts", "seed")


def register(sub) -> None:
    es = add_command_group(
        sub,
        "eval",
        help="evaluate embeddings: the paper's simple NLP tasks, D3 and the project's gold labels, calibrations",
        description="Evaluate QA answers: as features for classification (`classify`, on real offline data) and "
        "against gold yes/no labels (`d3`, `gold`, `calibration`).",
    )
    c = es.add_parser(
        "classify",
        help="logistic regression on student / teacher QA features vs. bag-of-words and MiniLM (accuracy, AUC)",
        description=CLASSIFY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(c, ClassifyConfig, overrides={"task": {"required": True}})
    c.add_argument("--out", required=True, help="results JSON file; the markdown table goes next to it (.md)")
    c.set_defaults(func=cmd_eval_classify)

    x = es.add_parser(
        "export-texts",
        help="write a task's texts as corpus JSONL, to label them with the teacher (`qaemb-fast label --corpus`)",
    )
    add_config_options(x, ClassifyConfig, only=TASK_FIELDS, overrides={"task": {"required": True}})
    x.add_argument("--split", choices=("all", "train", "test"), default="all", help="which texts (default: all)")
    x.add_argument("--out", required=True, help="output .jsonl file ({text, doc_id, split, label} per line)")
    x.set_defaults(func=cmd_eval_export_texts)

    add_config_command(
        es,
        "d3",
        D3Config,
        run="evaluation.d3:run_d3",
        help="D3 gold labels: how often are the student's or the teacher's yes/no answers right (ROC-AUC, accuracy)",
        description="Ask each D3 task's question about its texts and compare with the gold labels (evaluation/d3.py).",
        overrides={"data": {"required": True}},
    )
    add_config_command(
        es,
        "gold",
        GoldConfig,
        run="evaluation.gold:run_gold",
        help="the project's gold set (60 texts x the 109 default questions): how right are the teacher's or a "
        "student's answers (ROC-AUC, accuracy, yes-rate)",
        description="Score teacher answers (--teacher-labels, a labelling folder made on the gold texts) or a student "
        "checkpoint against the hand-made gold labels, pooled and per question, with and without ambiguous pairs "
        "(evaluation/gold.py).",
    )
    add_config_command(
        es,
        "any-question",
        AnyQuestionConfig,
        run="evaluation.any_question:run_any_question",
        help="a student with a question head against the teacher: trained and held-out questions on held-out texts",
        description="Score a student's answers against the teacher's on texts it never trained on: its trained "
        "questions (fixed head, and question head alone) and held-out questions it never saw (question head), "
        "with ROC-AUC, Pearson r and MAE per question (evaluation/any_question.py).",
    )
    add_config_command(
        es,
        "calibration",
        CalibrationEvalConfig,
        run="evaluation.calibration:run_calibration_eval",
        help="compare calibrations of the teacher's raw answers (none, contextual, shifted, platt, prompt variants) "
        "on the same gold and D3 pairs",
        description="Side by side on the same gold pairs and D3 pairs, from stored raw teacher answers: each "
        "calibration's ROC-AUC, balanced accuracy, accuracy vs. majority and yes-rate vs. truth "
        "(evaluation/calibration.py). Only the content-free inputs need the teacher (cached in OUT).",
        overrides={"gold_labels": {"required": True}, "out": {"required": True}},
    )


def cmd_eval_classify(args) -> int:
    from evaluation.classify import run_classify, to_markdown

    config = config_from_args(args, ClassifyConfig)
    require_path(config.student, "--student", "folder")
    require_path(config.teacher_labels, "--teacher-labels", "folder")
    require_path(config.questions, "--questions", "file")
    results = run_classify(config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    md = to_markdown(results)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def cmd_eval_export_texts(args) -> int:
    from evaluation.classify import export_task_texts, load_task

    config = config_from_args(args, ClassifyConfig, TASK_FIELDS)
    task = load_task(config.task, config.max_texts, config.seed)
    n = export_task_texts(task, args.out, seed=config.seed, split=args.split)
    same = f"--task {config.task}" + (f" --max-texts {config.max_texts}" if config.max_texts else "")
    same += f" --seed {config.seed}"
    print(f"wrote {n} texts of task {config.task!r} to {args.out}; label them with:")
    print(f"  qaemb-fast label --corpus {args.out} --out labels/{config.task} [--questions SET]")
    print(f"then: qaemb-fast eval classify {same} --teacher-labels labels/{config.task} --out results.json")
    return 0
