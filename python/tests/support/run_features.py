"""Runs tests/fixtures/features.py from source or from an archive and prints
its transcript; used by test_execution.py in fresh subprocesses.

    run_features.py source FEATURES_PY
    run_features.py dump FEATURES_PY ARCHIVE
    run_features.py archive FEATURES_PY ARCHIVE
"""
import sys
import types

mode, path = sys.argv[1], sys.argv[2]
if mode == "dump":
    import codeshare.archive
    with open(path, "rb") as file:
        codeshare.archive.write(sys.argv[3], [("features", compile(file.read(), path, "exec"), None)])
    sys.exit(0)
if mode == "source":
    import marshal
    # As a plain import from a .pyc would: compiled, written, read back.
    with open(path, "rb") as file:
        code = marshal.loads(marshal.dumps(compile(file.read(), path, "exec")))
else:
    import codeshare.archive
    code = codeshare.archive.open(sys.argv[3]).code("features")
module = types.ModuleType("features")
module.__file__ = path
sys.modules["features"] = module
exec(code, module.__dict__)
print("\n---\n".join(module.transcript()))
