"""graph.allocator: freed memory is kept for reuse, so a pass's temporaries do not page-fault every time."""

import os
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")

# A training pass in miniature: 24 arrays of 1 MB made (the forward's activations), then all freed (the end
# of backward), 20 times; prints the minor page faults of the last 10 rounds.
PASSES = """
import resource, sys
import numpy as np
if sys.argv[1] == "graph":  # building a graph is enough
    from graph import ComputationalGraph
    ComputationalGraph()
def rounds(n):
    for _ in range(n):
        kept = [np.ones(131072) for _ in range(24)]
        del kept
rounds(10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(10)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str, **environment) -> int:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), **environment}
    done = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, env=env, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's (this test runs on Linux, as CI does)")
def test_once_a_graph_is_built_freed_memory_is_reused_without_page_faults():
    # 10 rounds of 24 MB (256 pages each): with glibc's own thresholds every round faults its pages in again.
    assert page_faults("default") > 10 * 24 * 256 // 2
    assert page_faults("graph") < 100


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's (this test runs on Linux, as CI does)")
def test_the_environment_s_malloc_settings_win():
    assert page_faults("graph", MALLOC_TRIM_THRESHOLD_="0") > 10 * 24 * 256 // 2
    code = "from graph.allocator import keep_freed_memory; print(keep_freed_memory())"
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "MALLOC_TRIM_THRESHOLD_": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
