"""Benchmarks and evaluations built on the inference package: classification, question selection, synthetic and
real-fMRI voxel benchmarks, D3 gold labels. Nothing in `qaemb_fast` imports from here."""
