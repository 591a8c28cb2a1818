"""Voxelwise encoding models of fMRI responses to stories (Huth-lab / LeBel et al. 2023 conventions).

    from qaemb_fast.voxels import VoxelEncoder, load_ds003020
    stories, responses = load_ds003020("ds003020", "UTS03")
    enc = VoxelEncoder(student).fit(stories[:-1], responses[:-1])
    r = enc.score(stories[-1:], responses[-1:])       # Pearson r per voxel

Modules: features (Story, Lanczos, trimming, delays, feature sources), encoder (VoxelEncoder), ds003020
(the dataset's layout), synthetic (planted-truth benchmark), plots, cli. Importing this package is cheap:
himalaya, h5py, scipy and matplotlib are imported where they are used.
"""

from qaemb_fast.voxels.ds003020 import load_ds003020
from qaemb_fast.voxels.encoder import VoxelDataError, VoxelEncoder, VoxelEncoderConfig, pearson_r
from qaemb_fast.voxels.features import (
    AnswerTable,
    ContextWindowAnswers,
    FeatureConfig,
    Story,
    StoryError,
    WordEmbedding,
    WordRate,
)

__all__ = [
    "AnswerTable",
    "ContextWindowAnswers",
    "FeatureConfig",
    "Story",
    "StoryError",
    "VoxelDataError",
    "VoxelEncoder",
    "VoxelEncoderConfig",
    "WordEmbedding",
    "WordRate",
    "load_ds003020",
    "pearson_r",
]
