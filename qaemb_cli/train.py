"""`qaemb-fast train`: its options are generated from the fields of `training.train.TrainConfig` (type, default and
help live there, once); `training.train.to_command(config)` turns a config back into the command that reproduces it
(the model card prints it).

    qaemb-fast train --data labels/NAME --out checkpoints/NAME [--backbone ...] [--questions FILE]
                     [--max-epochs N] [--accelerator gpu --devices 4 --strategy ddp --num-nodes 2 --precision ...]
"""

from __future__ import annotations

from qaemb_cli.options import add_config_options, config_from_args, require_path
from training.train import TrainConfig


def register(sub) -> None:
    parser = sub.add_parser(
        "train",
        help="train a student on a labelled dataset (Lightning) and export it with a model card",
        description="Train a student (encoder + pooling + linear head) on the teacher answers in a labelled "
        "dataset, split by document into train/val/test; keep the best weights by the --monitor metric "
        "(validation loss by default); export them to --out with a model card of held-out metrics. Lightning "
        "checkpoints and logs go to <out>/../.lightning/<name>, outside the export folder.",
    )
    add_config_options(parser, TrainConfig)
    parser.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    config = config_from_args(args, TrainConfig)
    # The labelled dataset (finished, not empty, the right questions) is checked before torch and lightning load.
    from distill.labelled_dataset import load_labelled_dataset

    require_path(config.data, "--data", "folder")
    load_labelled_dataset(config.data, questions=config.questions)
    from training.train import train

    out = train(config)
    print(f"saved the student and its model card to {out}")
    return 0
