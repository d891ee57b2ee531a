"""glibc's malloc in a serving process: a large block freed goes back to the system (its mmap
and trim thresholds stay fixed instead of rising to the largest block freed so far)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A fresh interpreter: what a serving process does first, then a file read at start (8 MB)
# and a later large body (4 MB), each freed.
SCRIPT = r'''
import json
from pathlib import Path
from bot.cli.serve import limit_malloc_arenas

def rss():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024

limit_malloc_arenas()
start = bytearray(8 << 20)
del start
before = rss()
body = bytearray(4 << 20)
held = rss()
del body
print(json.dumps({"before": before, "held": held, "after": rss()}))
'''


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_large_block_freed_goes_back_to_the_system() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, check=True, timeout=60,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    figures = json.loads(done.stdout)
    assert figures["held"] >= figures["before"] + 3  # the body was there
    assert figures["after"] <= figures["before"] + 1, figures
