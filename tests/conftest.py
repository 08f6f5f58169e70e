"""Shared test settings: strict numpy semantics, seeded randomness, the repository paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import pytest

from minift import exercises
from minift.course.bundled import default_tokenizer

# Silent broadcasting between (B, T) and (B,) is a classic source of wrong losses: make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")
# The suite checks float32 arithmetic against closed forms and regrouped sums. On a GPU, XLA's
# default matmul precision is TF32 (10-bit mantissa), which fails those tolerances by design (seen:
# gradient accumulation vs the full batch on an H100). Tests ask for true float32; CPU is unchanged.
jax.config.update("jax_default_matmul_precision", "highest")

REPO = Path(__file__).resolve().parents[1]
# One persistent XLA compilation cache for the whole run, shared by every process the suite starts
# (the xdist workers, the notebook kernels, the CLI and grader subprocesses inherit the variables):
# many of them compile the same tiny model's steps. An entry is keyed by the program's fingerprint
# and the jax/jaxlib versions and flags, so changed code is a miss, never a stale program; a cached
# program is the same binary, so results are unchanged. Measured on the 2-core CPU: notebooks, CLI
# and grader tests 339 s -> 300 s from an empty cache. Kept in .cache/ (ignored), at most 512 MB.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".cache" / "jax-tests"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(512 * 2**20))
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))
SHARED_DATA = Path(os.environ.get("MINIFT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def key():
    """A fixed PRNG key: every random input in the suite is seeded."""
    return jax.random.PRNGKey(0)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    """The real datasets beside the checkout (../shared/data); tests using them skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def course_tokenizer():
    """The committed course tokenizer (data/samples/tokenizer.model)."""
    return default_tokenizer()


@pytest.fixture
def x64():
    """float64 inside the test only (jax.enable_x64 is a context manager in JAX 0.10)."""
    with jax.enable_x64(True):
        yield


# --- exercise mode: `minift grade` runs the equation tests with a student's function (minift.exercises) ---
GRADE_RESULTS: list[dict] = []


@pytest.fixture(autouse=True)
def _student_function(request):
    """Under ``minift grade`` (MINIFT_GRADE=<folder>), the student's function replaces minift's
    for the duration of each test that grades it; otherwise this does nothing."""
    folder = os.environ.get("MINIFT_GRADE")
    exercise = exercises.exercise_of_test(request.node.nodeid) if folder else None
    if exercise is None:
        yield
        return
    fn = getattr(exercises.load_student_module(folder, exercise.module), exercise.name)
    with exercises.patched(exercise, fn, extra=(request.module,)):
        yield


def pytest_runtest_logreport(report):
    if not os.environ.get("MINIFT_GRADE_REPORT") or (report.when != "call" and report.passed):
        return
    message = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = (crash.message if crash else str(report.longrepr)).strip().splitlines()[0][:300]
    GRADE_RESULTS.append({"nodeid": report.nodeid, "outcome": report.outcome, "message": message})


def pytest_sessionfinish(session):
    path = os.environ.get("MINIFT_GRADE_REPORT")
    if path:
        # A test that failed in setup (the student's file does not import) has no "call" report.
        outcome: dict[str, dict] = {}
        for r in GRADE_RESULTS:
            if r["nodeid"] not in outcome or r["outcome"] == "failed":
                outcome[r["nodeid"]] = r
        Path(path).write_text(json.dumps(list(outcome.values())), encoding="utf-8")


# --- scheduling on two workers (`make test`: pytest -n 2 --dist loadgroup) ---------------------------
# Each test file is one group, as with --dist loadfile: its module fixtures are built once, on one
# worker. The few long tests (a notebook run, the grader's planted bugs) are a group each, and all the
# long groups are handed out first: otherwise the notebooks, one file of 5 minutes, land last on one
# worker while the other idles. Ordering and grouping change which worker runs a test, never what it checks.
LONG = ("tests/test_notebooks.py::test_notebook_runs", "tests/test_exercises.py::test_grader_gives",
        "tests/test_notebooks.py::test_a_notebook_runs_in_exercise_mode")
LONG_FILES = ("tests/test_cli.py", "tests/test_sharding.py", "tests/test_rlhf_study.py", "tests/test_runs.py",
              "tests/test_bench.py", "tests/test_lora.py")


def pytest_collection_modifyitems(config, items):
    def long(item) -> bool:
        return item.nodeid.startswith(LONG)

    for item in items:
        item.add_marker(pytest.mark.xdist_group(item.nodeid if long(item) else item.nodeid.split("::")[0]))
    items.sort(key=lambda item: 0 if long(item) else 1 if item.nodeid.startswith(LONG_FILES) else 2)
