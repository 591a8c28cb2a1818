"""`qaemb-fast voxels ...`: fit, score and inspect voxelwise encoding models; run the synthetic benchmark.

    qaemb-fast voxels fit --data ds003020 --subject UTS03 --answers windows_labelled/ --out models/uts03
    qaemb-fast voxels score --data ds003020 --subject UTS03 --stories wheretheressmoke \
        --model models/uts03 --answers windows_labelled/ --out r.npy --plot r_hist.png
    qaemb-fast voxels top-questions --model models/uts03 --best 100 --r r.npy --plot region.png
    qaemb-fast voxels synthetic --out bench_out/        # planted-truth benchmark, ~1.5 min on 2 cores

Feature sources (exactly one for fit/score): --answers DIR (a labelled dataset whose texts are the stories'
context windows: cached teacher answers), --student CHECKPOINT, --eng1000 FILE (english1000sm.hf5), --word-rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_feature_args(p):
    g = p.add_argument_group("feature source (exactly one)")
    g.add_argument("--answers", metavar="DIR", help="labelled dataset (qaemb-fast label) holding the windows' answers")
    g.add_argument("--student", metavar="CHECKPOINT", help="student checkpoint folder answering the windows")
    g.add_argument("--eng1000", metavar="FILE", help="Eng1000 word vectors (english1000sm.hf5), a baseline")
    g.add_argument("--word-rate", action="store_true", help="word rate only, the field's low-level baseline")


def _add_data_args(p, stories_help):
    p.add_argument("--data", required=True, metavar="ROOT", help="local ds003020 root (holds derivative/)")
    p.add_argument("--subject", required=True, help="subject folder under derivative/preprocessed_data, e.g. UTS03")
    p.add_argument("--stories", nargs="+", metavar="STORY", help=stories_help)
    p.add_argument("--tr", type=float, default=2.0045, help="TR in seconds (reference code simulates 2.0)")
    p.add_argument("--max-voxels", type=int, help="use only the first N voxels (quick trials)")


def register(sub):
    p = sub.add_parser("voxels", help="voxelwise encoding models of fMRI responses to stories")
    p.set_defaults(_parser=p)
    vs = p.add_subparsers(dest="voxels_command", metavar="SUBCOMMAND")

    f = vs.add_parser("fit", help="fit a VoxelEncoder on ds003020 stories and save it")
    _add_data_args(f, "training stories (default: every story the subject has)")
    _add_feature_args(f)
    f.add_argument("--out", required=True, metavar="DIR", help="folder for the fitted model (json + npz)")
    f.add_argument("--delays", type=int, nargs="+", default=[1, 2, 3, 4], help="FIR delays in TRs")
    f.add_argument("--context-words", type=int, default=10, help="preceding words in each word's window")
    f.add_argument("--backend", default="auto", help="himalaya backend: auto, numpy, torch, torch_cuda")
    f.set_defaults(func=cmd_fit)

    s = vs.add_parser("score", help="Pearson r per voxel of a saved model on held-out stories")
    _add_data_args(s, "test stories (required in practice: never score on training stories)")
    _add_feature_args(s)
    s.add_argument("--model", required=True, metavar="DIR", help="folder written by `voxels fit`")
    s.add_argument("--out", metavar="FILE.npy", help="save r per voxel here")
    s.add_argument("--plot", metavar="FILE.png", help="save a histogram of r here")
    s.set_defaults(func=cmd_score)

    t = vs.add_parser("top-questions", help="the questions with the largest weights for voxels or a region")
    t.add_argument("--model", required=True, metavar="DIR", help="folder written by `voxels fit`")
    t.add_argument("--voxel", type=int, nargs="+", help="voxel indices (several: averaged as a region)")
    t.add_argument("--best", type=int, metavar="N", help="instead: the N voxels with the highest r (needs --r)")
    t.add_argument("--r", metavar="FILE.npy", help="r per voxel from `voxels score --out`")
    t.add_argument("-k", type=int, default=10, help="questions to show")
    t.add_argument("--by", choices=["abs", "positive", "negative"], default="abs", help="ranking of weights")
    t.add_argument("--plot", metavar="FILE.png", help="save question-weight bars here")
    t.set_defaults(func=cmd_top_questions)

    b = vs.add_parser(
        "synthetic",
        help="planted-truth benchmark: teacher, student and baselines on synthetic voxels",
        description="Without --teacher-answers, keyword-matching stand-ins play teacher and student "
        "(labelled as such). With the real teacher: export the windows, label them, pass the folder.",
    )
    b.add_argument(
        "--teacher-answers",
        metavar="DIR",
        help="labelled dataset with the teacher's answers to every "
        "window (write the windows with --export-windows first); these answers plant the truth",
    )
    b.add_argument("--student", metavar="CHECKPOINT", help="student checkpoint to compare (needs --teacher-answers)")
    b.add_argument(
        "--export-windows",
        metavar="FILE.txt",
        help="write the benchmark's context windows, one per line, for the teacher to label, and exit",
    )
    b.add_argument("--n-stories", type=int, default=12, help="stories (the last --n-test are held out)")
    b.add_argument("--n-test", type=int, default=3, help="held-out test stories")
    b.add_argument("--story-seconds", type=float, default=420.0, help="length of each story")
    b.add_argument("--n-voxels", type=int, default=2000, help="synthetic voxels")
    b.add_argument("--seed", type=int, default=0, help="seed for stories, voxels and noise")
    b.add_argument("--out", metavar="DIR", help="write table.md, results.json and plots here")
    b.set_defaults(func=cmd_synthetic)
    return p


# ------------------------------------------------------------------------------------------------------------


def load_student(path):
    """The student at `path` ("default" = the shipped default) as a feature source."""
    from qaemb_fast.embedder import QAEmbedder

    return QAEmbedder.from_pretrained(None if path in (None, "default") else path)


def _feature_source(args):
    chosen = [k for k in ("answers", "student", "eng1000", "word_rate") if getattr(args, k)]
    if len(chosen) != 1:
        raise SystemExit("error: give exactly one feature source: --answers, --student, --eng1000 or --word-rate")
    from qaemb_fast.voxels import features

    if args.answers:
        return features.AnswerTable.from_labelled_dataset(args.answers)
    if args.student:
        return load_student(args.student)
    if args.eng1000:
        from qaemb_fast.voxels.ds003020 import load_eng1000

        return load_eng1000(args.eng1000)
    return features.WordRate()


def _load_data(args):
    from qaemb_fast.voxels.ds003020 import load_ds003020

    voxels = None
    if args.max_voxels:
        import numpy as np

        voxels = np.arange(args.max_voxels)
    stories, responses = load_ds003020(args.data, args.subject, args.stories, tr=args.tr, voxels=voxels)
    print(f"{len(stories)} stories, {responses[0].shape[1]} voxels", file=sys.stderr)
    return stories, responses


def cmd_fit(args):
    from qaemb_fast.voxels import VoxelEncoder, VoxelEncoderConfig
    from qaemb_fast.voxels.features import FeatureConfig

    src = _feature_source(args)
    stories, responses = _load_data(args)
    cfg = VoxelEncoderConfig(
        features=FeatureConfig(context_words=args.context_words, delays=tuple(args.delays)), backend=args.backend
    )
    enc = VoxelEncoder(src, cfg).fit(stories, responses)
    enc.save(args.out)
    print(f"saved {enc!r} to {args.out} (median alpha {float(sorted(enc.best_alphas_)[len(enc.best_alphas_) // 2]):g})")


def cmd_score(args):
    import numpy as np

    from qaemb_fast.voxels import VoxelEncoder

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


def cmd_top_questions(args):
    import numpy as np

    from qaemb_fast.voxels import VoxelEncoder

    enc = VoxelEncoder.load(args.model)
    if args.best:
        if not args.r:
            raise SystemExit("error: --best needs --r FILE.npy (from `voxels score --out`)")
        voxels = np.argsort(-np.load(args.r))[: args.best]
    elif args.voxel:
        voxels = np.asarray(args.voxel)
    else:
        raise SystemExit("error: give --voxel I [I ...] or --best N --r FILE.npy")
    what = f"voxel {voxels[0]}" if len(voxels) == 1 else f"{len(voxels)} voxels (mean weight)"
    print(f"top questions for {what}:")
    for q, w in enc.top_questions(voxels, k=args.k, by=args.by):
        print(f"  {w:+.3f}  {q}")
    if args.plot:
        from qaemb_fast.voxels.plots import plot_question_weights

        plot_question_weights(enc, voxels, args.plot, k=args.k)
        print(f"wrote {args.plot}")


def cmd_synthetic(args):
    import numpy as np

    from qaemb_fast.voxels import synthetic as syn
    from qaemb_fast.voxels.features import AnswerTable, context_windows

    cfg = syn.SyntheticConfig(
        n_stories=args.n_stories,
        n_test=args.n_test,
        story_seconds=args.story_seconds,
        n_voxels=args.n_voxels,
        seed=args.seed,
    )
    sentences = syn.wordnet_sentences()
    if args.export_windows:
        stories = syn.make_stories(sentences, cfg.n_stories, cfg.story_seconds, cfg.tr, cfg.seed)
        windows = sorted({w for s in stories for w in context_windows(s.words)})
        Path(args.export_windows).write_text("\n".join(windows) + "\n")
        print(f"wrote {len(windows)} unique windows to {args.export_windows}")
        return 0
    if args.student and not args.teacher_answers:
        raise SystemExit("error: --student needs --teacher-answers (the teacher's answers plant the truth)")
    if args.teacher_answers:
        teacher, t_label = AnswerTable.from_labelled_dataset(args.teacher_answers), "teacher QA"
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


def main(argv=None):
    """`python -m qaemb_fast.voxels.cli ...` works without the console script."""
    parser = argparse.ArgumentParser(prog="qaemb-fast")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["voxels", *(sys.argv[1:] if argv is None else argv)])
    if not getattr(args, "func", None):
        args._parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
