"""Running a Triton test file in the interpreter when there is no GPU.

Triton decides at *import* time whether ``@triton.jit`` builds interpreted functions, so the
interpreter cannot be switched on inside a pytest process that has already imported triton.
A test file with Triton cases marks them ``@here`` (run on CUDA, or when this process is the
interpreter) and has one launcher test that calls :func:`run_in_interpreter` on itself.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CUDA = torch.cuda.is_available()
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
RUN_HERE = CUDA or INTERPRET
DEV = "cuda" if CUDA else "cpu"
LAUNCHER_SKIP = "already in the interpreter or on CUDA"
CUDA_ONLY = "host-device syncs exist only on CUDA"

here = pytest.mark.skipif(not RUN_HERE, reason="runs in the interpreter subprocess "
                          "(its file's launcher test) or on CUDA")
launcher = pytest.mark.skipif(RUN_HERE, reason=LAUNCHER_SKIP)


def run_in_interpreter(test_file, min_passed: int) -> None:
    """Run ``test_file`` with TRITON_INTERPRET=1 in a subprocess; fail with its output if a
    case fails, fewer than ``min_passed`` ran, or anything but the launcher was skipped."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    path = Path(test_file).resolve()
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           "--rootdir", str(path.parent), str(path)]
    res = subprocess.run(cmd, env=env, cwd=path.parent, capture_output=True, text=True,
                         timeout=900)
    tail = (res.stdout + res.stderr)[-6000:]
    assert res.returncode == 0, f"Triton interpreter suite failed:\n{tail}"
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed.group(1)) >= min_passed, tail  # the cases really ran
    skip_reasons = set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", res.stdout, re.M))
    assert skip_reasons <= {LAUNCHER_SKIP, CUDA_ONLY}, tail  # nothing else was skipped
