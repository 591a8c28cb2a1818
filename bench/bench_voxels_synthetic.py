"""Synthetic voxel benchmark with planted truth (teacher, student and baselines). Same as
`qaemb-fast voxels synthetic`; see evaluation/voxels_synthetic.py for what is planted and measured.

    python bench/bench_voxels_synthetic.py --out bench/results/voxels_synthetic
    # with the real teacher and student:
    python bench/bench_voxels_synthetic.py --export-windows windows.txt   # label these with the teacher, then
    python bench/bench_voxels_synthetic.py --teacher-answers LABELLED_DIR --student CHECKPOINT --out ...
"""

import sys

from qaemb_cli.main import main

if __name__ == "__main__":
    sys.exit(main(["voxels", "synthetic", *sys.argv[1:]]))
