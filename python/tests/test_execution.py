"""Acceptance: archived code runs exactly as the original (same transcript
of closures, generators, coroutines, exceptions, tracebacks, tracing,
specialization, GC under threads, code-object operations)."""
import os

from conftest import FIXTURES, SUPPORT

DRIVER = os.path.join(SUPPORT, "run_features.py")
FEATURES = os.path.join(FIXTURES, "features.py")


def test_archived_code_behaves_exactly_as_marshalled_code(tmp_path, run):
    archive = str(tmp_path / "features.csa")
    run([DRIVER, "dump", FEATURES, archive], env={"PYTHONHASHSEED": "0"})
    # One seed for both runs: frozenset iteration order depends on it.
    environment = {"PYTHONHASHSEED": "4242"}
    original = run([DRIVER, "source", FEATURES], env=environment)
    archived = run([DRIVER, "archive", FEATURES, archive], env=environment)
    assert archived.stdout == original.stdout
    assert archived.stderr == original.stderr == ""
    transcript = archived.stdout
    # The run really exercised what the comparison is about.
    assert "BINARY_OP_ADD_INT" in transcript and "LOAD_FAST__LOAD_FAST" in transcript
    assert "~~~~~~" in transcript or "^^^^^" in transcript, "traceback carets"
    assert "line traced 3" in transcript
    assert "unhashable: unhashable type: 'list'" in transcript
