"""Large vocabularies: KL, CE and entropy from (batch, vocab) logits keep peak extra memory
at or below 25% of one input, for numpy and torch.

numpy allocations are traced by ``tracemalloc``. torch's CPU allocator is not, so for torch
the peak resident set size is read from /proc with glibc told to mmap every large block
(so that freed temporaries leave the resident set and new ones enter it); the plain
torch one-liner is measured the same way to show the method sees temporaries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import klkit
from conftest import as_kind, numpy_peak_memory

pytestmark = pytest.mark.usefixtures("torch_one_thread")
SHAPE = (8, 128_000)
LIMIT = 0.25


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(7)
    a = rng.standard_normal(SHAPE).astype(np.float32)
    b = rng.standard_normal(SHAPE).astype(np.float32)
    return a, b


CASES = {
    "kl_logits": lambda a, b: klkit.kl_divergence(a, b, kind="logits"),
    "ce_logits": lambda a, b: klkit.cross_entropy(a, b, kind="logits"),
    "entropy_logits": lambda a, b: klkit.entropy(a, kind="logits"),
    "kl_logits_axis0": lambda a, b: klkit.kl_divergence(a.T, b.T, kind="logits", axis=0),
    "kl_log_probs": lambda a, b: klkit.kl_divergence(a, b, kind="log_probs"),
    "entropy_log_probs": lambda a, b: klkit.entropy(a, kind="log_probs"),
    "ce_probs_vs_logits": lambda a, b: klkit.cross_entropy(a, b, kind="probs", q_kind="logits"),
    "kl_logits_no_checks": lambda a, b: klkit.kl_divergence(a, b, kind="logits", validate=False),
    # a prime vocabulary cannot be viewed as equal pieces: torch takes column slices
    "kl_logits_prime_vocab": lambda a, b: klkit.kl_divergence(a[:, :127_997], b[:, :127_997], kind="logits"),
}
KIND_OF_P = {"kl_log_probs": "log_probs", "entropy_log_probs": "log_probs", "ce_probs_vs_logits": "probs"}
KIND_OF_Q = {"kl_log_probs": "log_probs", "entropy_log_probs": "log_probs"}


def _inputs(logits, case, to):
    a, b = logits
    pa = as_kind(a.astype(np.float64), KIND_OF_P.get(case, "logits")).astype(np.float32)
    qb = as_kind(b.astype(np.float64), KIND_OF_Q.get(case, "logits")).astype(np.float32)
    if KIND_OF_P.get(case) == "probs":
        pa = (pa / pa.sum(-1, keepdims=True, dtype=np.float64)).astype(np.float32)
    return to(pa), to(qb)


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_peak_memory(logits, case):
    p, q = _inputs(logits, case, np.ascontiguousarray)
    peak = numpy_peak_memory(lambda: CASES[case](p, q))
    assert peak <= LIMIT * p.nbytes, f"{case}: peak {peak / p.nbytes:.1%} of one input"


# torch's CPU allocator is invisible to tracemalloc, so torch is measured by the resident set
# size, in a fresh interpreter: what earlier tests left in this process's heap (pytest-xdist
# runs many modules in one worker) would otherwise serve the temporaries unseen.
_TORCH_PEAKS = """
import ctypes, json, sys
import numpy as np, torch
sys.path.insert(0, {tests!r})
import klkit
from test_measures_memory import CASES, _inputs, SHAPE

libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD: blocks >= 64 KiB are mmapped (and unmapped on free)
libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD
torch.set_num_threads(1)

def read(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))

def rss_peak(f):
    f()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    base = read("VmRSS:")
    f()
    return read("VmHWM:") - base

rng = np.random.default_rng(7)
logits = tuple(rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2))
peaks = {{}}
with torch.no_grad():
    for case in CASES:
        p, q = _inputs(logits, case, torch.from_numpy)
        peaks[case] = min(rss_peak(lambda: CASES[case](p, q)) for _ in range(2)) / p.nbytes
    a, b = (torch.from_numpy(x) for x in logits)
    plain = lambda: (torch.softmax(a, -1) * (torch.log_softmax(a, -1) - torch.log_softmax(b, -1))).sum(-1)
    peaks["plain one-liner"] = rss_peak(plain) / a.nbytes
print(json.dumps(peaks))
"""


@pytest.fixture(scope="module")
def torch_peaks() -> dict[str, float]:
    """Peak extra resident memory of each case, as a fraction of one input, measured in a fresh process."""
    pytest.importorskip("torch")
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc and tunes glibc malloc")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pytest.skip("/proc/self/clear_refs is not writable here")
    tests = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", _TORCH_PEAKS.format(tests=tests)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_torch_peak_memory(torch_peaks, case):
    assert torch_peaks[case] <= LIMIT, f"{case}: peak {torch_peaks[case]:.1%} of one input"


def test_the_torch_measurement_sees_temporaries(torch_peaks):
    assert torch_peaks["plain one-liner"] >= 2.5  # several full-size temporaries
