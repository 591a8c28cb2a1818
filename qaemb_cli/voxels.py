"""`qaemb-fast voxels ...`: fit, score and inspect voxelwise encoding models; run the voxel benchmarks.

    qaemb-fast voxels fit --data ds003020 --subject UTS03 --answers windows_labelled/ --out models/uts03
    qaemb-fast voxels score --data ds003020 --subject UTS03 --stories wheretheressmoke \
        --model models/uts03 --answers windows_labelled/ --out r.npy --plot r_hist.png
    qaemb-fast voxels top-questions --model models/uts03 --best 100 --r r.npy --plot region.png
    qaemb-fast voxels synthetic --out bench_out/        # planted-truth benchmark, ~1.5 min on 2 cores
    qaemb-fast voxels benchmark --data real-fmri --out out/fmri    # real fMRI (TR-level export), side by side

Feature sources (exactly one for fit/score): --answers DIR (a labelling folder whose texts are the stories'
context windows: cached teacher answers), --student CHECKPOINT, --eng1000 FILE (english1000sm.hf5), --word-rate.
Options come from FeatureConfig, VoxelEncoderConfig (qaemb_fast.voxels), SyntheticConfig
(evaluation.voxels_synthetic) and RealFmriBenchmarkConfig (evaluation.real_fmri).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from evaluation.real_fmri import RealFmriBenchmarkConfig
from evaluation.voxels_synthetic import SyntheticConfig
from qaemb_cli.options import (
    UsageError,
    add_command_group,
    add_config_command,
    add_config_options,
    config_from_args,
    require_path,
)
from qaemb_fast.voxels.ds003020 import TR
from qaemb_fast.voxels.encoder import VoxelEncoderConfig
from qaemb_fast.voxels.features import FeatureConfig

SOURCES = ("answers", "student", "eng1000", "word_rate")


def _add_feature_args(p):
    g = p.add_argument_group("feature source (exactly one)")
    g.add_argument("--answers", metavar="DIR", help="labelling folder (qaemb-fast label) holding the windows' answers")
    g.add_argument("--student", metavar="CHECKPOINT", help="student checkpoint folder answering the windows")
    g.add_argument("--eng1000", metavar="FILE", help="Eng1000 word vectors (english1000sm.hf5), a baseline")
    g.add_argument("--word-rate", action="store_true", help="word rate only, the field's low-level baseline")


def _add_data_args(p, stories_help):
    p.add_argument("--data", required=True, metavar="ROOT", help="local ds003020 root (holds derivative/)")
    p.add_argument("--subject", required=True, help="subject folder under derivative/preprocessed_data, e.g. UTS03")
    p.add_argument("--stories", nargs="+", metavar="STORY", help=stories_help)
    p.add_argument("--tr", type=float, default=TR, help=f"TR in seconds (default: {TR}; reference code simulates 2.0)")
    p.add_argument("--max-voxels", type=int, help="use only the first N voxels (quick trials)")


def register(sub):
    vs = add_command_group(
        sub,
        "voxels",
        help="voxelwise encoding models of fMRI responses to stories",
        description="Fit, score and inspect voxelwise encoding models (ridge from QA answers to fMRI responses, "
        "Huth-lab conventions), and run the synthetic (planted truth) and real-fMRI benchmarks.",
    )

    f = vs.add_parser("fit", help="fit a VoxelEncoder on ds003020 stories and save it")
    _add_data_args(f, "training stories (default: every story the subject has)")
    _add_feature_args(f)
    f.add_argument("--out", required=True, metavar="DIR", help="folder for the fitted model (json + npz)")
    add_config_options(f, FeatureConfig, only=("delays", "context_words"))
    add_config_options(f, VoxelEncoderConfig, only=("backend", "n_folds"))
    f.set_defaults(func=cmd_voxels_fit)

    s = vs.add_parser("score", help="Pearson r per voxel of a saved model on held-out stories")
    _add_data_args(s, "test stories (required in practice: never score on training stories)")
    _add_feature_args(s)
    s.add_argument("--model", required=True, metavar="DIR", help="folder written by `voxels fit`")
    s.add_argument("--out", metavar="FILE.npy", help="save r per voxel here")
    s.add_argument("--plot", metavar="FILE.png", help="save a histogram of r here")
    s.set_defaults(func=cmd_voxels_score)

    t = vs.add_parser("top-questions", help="the questions with the largest weights for voxels or a region")
    t.add_argument("--model", required=True, metavar="DIR", help="folder written by `voxels fit`")
    t.add_argument("--voxel", type=int, nargs="+", help="voxel indices (several: averaged as a region)")
    t.add_argument("--best", type=int, metavar="N", help="instead: the N voxels with the highest r (needs --r)")
    t.add_argument("--r", metavar="FILE.npy", help="r per voxel from `voxels score --out`")
    t.add_argument("-k", type=int, default=10, help="questions to show (default: 10)")
    t.add_argument("--by", choices=["abs", "positive", "negative"], default="abs", help="ranking of weights")
    t.add_argument("--plot", metavar="FILE.png", help="save question-weight bars here")
    t.set_defaults(func=cmd_voxels_top_questions)

    b = vs.add_parser(
        "synthetic",
        help="planted-truth benchmark: teacher, student and baselines on synthetic voxels",
        description="Synthetic voxels driven by the answers to a few planted questions (evaluation/voxels_synthetic"
        ".py); does each feature space recover them? Without --teacher-answers, keyword-matching stand-ins play "
        "teacher and student (labelled as such). With the real teacher: export the windows, label them, pass the "
        "folder.",
    )
    b.add_argument(
        "--teacher-answers",
        metavar="DIR",
        help="labelling folder with the teacher's answers to every window (write the windows with "
        "--export-windows first); these answers plant the truth",
    )
    b.add_argument("--student", metavar="CHECKPOINT", help="student checkpoint to compare (needs --teacher-answers)")
    b.add_argument(
        "--export-windows",
        metavar="FILE.txt",
        help="write the benchmark's context windows, one per line, for the teacher to label, and exit",
    )
    b.add_argument("--out", metavar="DIR", help="write table.md, results.json and plots here")
    add_config_options(b, SyntheticConfig)
    b.set_defaults(func=cmd_voxels_synthetic)

    add_config_command(
        vs,
        "benchmark",
        RealFmriBenchmarkConfig,
        run="evaluation.real_fmri:run_real_fmri_benchmark",
        report="evaluation.real_fmri:results_markdown",
        help="real-fMRI benchmark: student, teacher and baselines predicting measured responses to held-out stories",
        description="Fit every feature space on the training stories of a TR-level fMRI export and score it on the "
        "test stories, side by side, with block-bootstrap intervals (evaluation/real_fmri.py).",
        overrides={"data": {"required": True}},
    )


# ------------------------------------------------------------------------------------------------------------


def load_student(path):
    """The student at `path` ("default" = the shipped default) as a feature source."""
    from qaemb_fast.embedder import QAEmbedder

    return QAEmbedder.from_pretrained(None if path in (None, "default") else path)


def _feature_source(args):
    chosen = [k for k in SOURCES if getattr(args, k)]
    if len(chosen) != 1:
        raise UsageError("give exactly one feature source: --answers, --student, --eng1000 or --word-rate")
    if args.answers:
        from distill.label import answers_by_text

        require_path(args.answers, "--answers", "folder")
        return answers_by_text(args.answers)
    if args.student:
        if args.student != "default":
            require_path(args.student, "--student", "folder")
        return load_student(args.student)
    if args.eng1000:
        from qaemb_fast.voxels.ds003020 import load_eng1000

        require_path(args.eng1000, "--eng1000", "file")
        return load_eng1000(args.eng1000)
    from qaemb_fast.voxels.features import WordRate

    return WordRate()


def _load_data(args):
    import numpy as np

    from qaemb_fast.voxels.ds003020 import load_ds003020

    require_path(args.data, "--data", "folder")
    voxels = np.arange(args.max_voxels) if args.max_voxels else None
    stories, responses = load_ds003020(args.data, args.subject, args.stories, tr=args.tr, voxels=voxels)
    print(f"{len(stories)} stories, {responses[0].shape[1]} voxels", file=sys.stderr)
    return stories, responses


def cmd_voxels_fit(args) -> int:
    from qaemb_fast.voxels import VoxelEncoder

    require_path(args.data, "--data", "folder")
    src = _feature_source(args)
    stories, responses = _load_data(args)
    config = config_from_args(args, VoxelEncoderConfig, ("backend", "n_folds"), features=config_from_args(
        args, FeatureConfig, ("delays", "context_words")))  # fmt: skip
    enc = VoxelEncoder(src, config).fit(stories, responses)
    enc.save(args.out)
    print(f"saved {enc!r} to {args.out} (median alpha {float(sorted(enc.best_alphas_)[len(enc.best_alphas_) // 2]):g})")
    return 0


def cmd_voxels_score(args) -> int:
    import numpy as np

    from qaemb_fast.voxels import VoxelEncoder

    require_path(args.model, "--model", "folder")
    require_path(args.data, "--data", "folder")
    enc = VoxelEncoder.load(args.model, features=_feature_source(args))
    stories, responses = _load_data(args)
    overlap = sorted({s.name for s in stories} & set(enc.train_stories_))
    if overlap:
        print(f"warning: scoring on training stories {overlap}: r will be inflated", file=sys.stderr)
    r = enc.score(stories, responses)
    top = np.sort(r)[::-1][: max(1, len(r) // 100)]
    print(f"mean r {r.mean():.4f} | top 1% {top.mean():.4f} | r > 0: {(r > 0).mean():.1%} | {len(r)} voxels")
    if args.out:
        np.save(args.out, r)
    if args.plot:
        from qaemb_fast.voxels.plots import plot_r_histogram

        plot_r_histogram(r, args.plot, labels=Path(args.model).name)
        print(f"wrote {args.plot}")
    return 0


def cmd_voxels_top_questions(args) -> int:
    import numpy as np

    from qaemb_fast.voxels import VoxelEncoder

    require_path(args.model, "--model", "folder")
    if args.best:
        if not args.r:
            raise UsageError("--best needs --r FILE.npy (from `voxels score --out`)")
        voxels = np.argsort(-np.load(require_path(args.r, "--r", "file")))[: args.best]
    elif args.voxel:
        voxels = np.asarray(args.voxel)
    else:
        raise UsageError("give --voxel I [I ...] or --best N --r FILE.npy")
    enc = VoxelEncoder.load(args.model)
    what = f"voxel {voxels[0]}" if len(voxels) == 1 else f"{len(voxels)} voxels (mean weight)"
    print(f"top questions for {what}:")
    for q, w in enc.top_questions(voxels, k=args.k, by=args.by):
        print(f"  {w:+.3f}  {q}")
    if args.plot:
        from qaemb_fast.voxels.plots import plot_question_weights

        plot_question_weights(enc, voxels, args.plot, k=args.k)
        print(f"wrote {args.plot}")
    return 0


def cmd_voxels_synthetic(args) -> int:
    import numpy as np

    from evaluation import voxels_synthetic as syn
    from qaemb_fast.texts import context_windows

    if args.student and not args.teacher_answers:
        raise UsageError("--student needs --teacher-answers (the teacher's answers plant the truth)")
    require_path(args.teacher_answers, "--teacher-answers", "folder")
    if args.student and args.student != "default":
        require_path(args.student, "--student", "folder")
    cfg = config_from_args(args, SyntheticConfig)
    sentences = syn.wordnet_sentences()
    if args.export_windows:
        stories = syn.make_stories(sentences, cfg.n_stories, cfg.story_seconds, cfg.tr, cfg.seed)
        windows = sorted({w for s in stories for w in context_windows(s.words)})
        Path(args.export_windows).write_text("\n".join(windows) + "\n")
        print(f"wrote {len(windows)} unique windows to {args.export_windows}")
        return 0
    if args.teacher_answers:
        from distill.label import answers_by_text

        teacher, t_label = answers_by_text(args.teacher_answers), "teacher QA"
        student = load_student(args.student) if args.student else None
        s_label = "student QA"
    else:
        teacher, t_label = syn.KeywordEncoder(), "teacher QA (stand-in: keyword matcher)"
        student = syn.KeywordEncoder(miss=0.1, noise=0.1, seed=1)
        s_label = "student QA (stand-in: keyword matcher, 10% keywords missed, noise sd 0.1)"
    spaces = syn.default_spaces(teacher, student, sentences, t_label, s_label)
    if student is None:
        spaces.pop(s_label)
    result = syn.run_benchmark(spaces, teacher, sentences, cfg, log=lambda m: print(m, file=sys.stderr))
    table = syn.markdown_table(result)
    rows = {r["name"]: r for r in result["rows"]}
    if s_label in rows:
        ratio = rows[s_label]["mean_r"] / rows[t_label]["mean_r"]
        table += f"\nStudent / teacher mean r: {ratio:.1%} (target >= 97%)."
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        summary = {k: v for k, v in result.items() if k in ("rows", "ceiling", "chance_p_at_k", "n_words")}
        summary["config"] = vars(cfg)
        (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
        np.savez(out / "r_per_voxel.npz", **{k: v for k, v in result["r"].items()})
        from qaemb_fast.voxels.plots import plot_question_weights, plot_r_histogram

        plot_r_histogram(result["r"], out / "r_hist.png", title="Synthetic benchmark: test r per voxel")
        # The best-predicted voxel under the teacher, and what each question model says drives it.
        best = int(np.argmax(result["r"][t_label]))
        planted = [teacher.questions[i] for i in result["planted"][best]]
        for name, tag in ((t_label, "teacher"), (s_label, "student")):
            if name in result["models"]:
                path = out / f"weights_{tag}_voxel{best}.png"
                title = f"{name.split(' (')[0]}: voxel {best} (planted questions in bold)"
                plot_question_weights(result["models"][name], best, path, title=title, highlight=planted)
        table_note = f"\nBest voxel {best}: planted questions " + "; ".join(planted)
        (out / "table.md").write_text(table + table_note + "\n")
        print(f"wrote {out}/table.md, results.json, r_per_voxel.npz, r_hist.png, weights_*.png", file=sys.stderr)
    return 0
