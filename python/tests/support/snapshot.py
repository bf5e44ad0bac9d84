"""Prints, at exit, what the import system left behind: every module's
name and import-related attributes, as JSON on stdout. Programs under test
import this first; plain and archived runs must print the same."""
import atexit
import json
import sys


def _loader(loader):
    """A loader's class and attribute names (a loader compares equal to another
    of its class with the same attributes)."""
    return [type(loader).__module__, type(loader).__qualname__, sorted(getattr(loader, "__dict__", ()))]


def _describe(module):
    spec = getattr(module, "__spec__", None)
    path = getattr(module, "__path__", None)
    locations = getattr(spec, "submodule_search_locations", None)
    return {
        "file": getattr(module, "__file__", None),
        "cached": getattr(module, "__cached__", None),
        "package": getattr(module, "__package__", None),
        "path": list(path) if path is not None else None,
        "origin": getattr(spec, "origin", None),
        "locations": list(locations) if locations is not None else None,
        "loader": _loader(getattr(module, "__loader__", None)),
        "spec loader": _loader(getattr(spec, "loader", None)),
    }


def _print():
    modules = {name: _describe(module) for name, module in sorted(sys.modules.items())
               if isinstance(module, type(sys))}
    print("SNAPSHOT " + json.dumps({"keys": sorted(sys.modules), "modules": modules}, sort_keys=True))


atexit.register(_print)
