"""Voxelwise encoding models of fMRI responses to stories (Huth-lab / LeBel et al. 2023 conventions).

    from qaemb_fast.voxels import VoxelEncoder, load_ds003020
    stories, responses = load_ds003020("ds003020", "UTS03")
    enc = VoxelEncoder(student).fit(stories[:-1], responses[:-1])
    r = enc.score(stories[-1:], responses[-1:])       # Pearson r per voxel

Modules: features (Story, Lanczos, trimming, delays, feature sources), encoder (VoxelEncoder), ds003020
(the dataset's layout), trlevel (data exported per TR: words and response per TR, already trimmed), plots.
The benchmarks built on them live in `evaluation/` and the commands in `qaemb_cli/voxels.py`. Importing this
package is cheap: himalaya, h5py, scipy and matplotlib are imported where they are used.
"""

from qaemb_fast.answer_table import AnswerTable
from qaemb_fast.voxels.ds003020 import DatasetLayoutError, load_ds003020
from qaemb_fast.voxels.encoder import VoxelDataError, VoxelEncoder, VoxelEncoderConfig, pearson_r
from qaemb_fast.voxels.features import (
    ContextWindowAnswers,
    FeatureConfig,
    Story,
    StoryError,
    WordEmbedding,
    WordRate,
)
from qaemb_fast.voxels.trlevel import (
    list_splits,
    list_subjects,
    list_trlevel_stories,
    load_trlevel,
    trlevel_feature_config,
)

__all__ = [
    "AnswerTable",
    "ContextWindowAnswers",
    "DatasetLayoutError",
    "FeatureConfig",
    "Story",
    "StoryError",
    "VoxelDataError",
    "VoxelEncoder",
    "VoxelEncoderConfig",
    "WordEmbedding",
    "WordRate",
    "list_splits",
    "list_subjects",
    "list_trlevel_stories",
    "load_ds003020",
    "load_trlevel",
    "pearson_r",
    "trlevel_feature_config",
]
