"""The archive API (codeshare.archive), as the README documents it, in a
fresh process: an open archive is a type of the extension, and answers as
the Python class it replaced did."""
import textwrap

PROGRAM = textwrap.dedent("""
    import pathlib, sys
    import codeshare.archive as archive
    path = pathlib.Path(sys.argv[1])
    source = "def f():\\n    return 42\\n"
    archive.write(path, [("one", compile(source, "one.py", "exec"), {"size": 1}),
                         ("two", compile("x = 2", "two.py", "exec"), ("origin", True))],
                  manifest={"made": "here"})
    with archive.open(path) as opened:
        print(type(opened).__module__, type(opened).__name__, opened.path == str(path))
        print(opened.names, len(opened), "one" in opened, "three" in opened)
        print(opened.metadata("one"), opened.metadata("two"), opened.manifest)
        code = opened.code("one")
        namespace = {}
        exec(code, namespace)
        print(namespace["f"](), code is opened.code("one"), opened.stats["modules_loaded"])
        print(opened.release("one") >= 0, opened.read_ahead(), opened.read_ahead(after=1, now=True))
        print(opened.header["module_count"], sorted(opened.census()[1]))
        for call in (lambda: opened.code("three"), lambda: opened.metadata("three"),
                     lambda: opened.release("one", protected=True), lambda: opened.read_ahead(1),
                     lambda: archive.open(b"/no/such.csa")):
            try:
                call()
            except (KeyError, TypeError) as error:
                print(type(error).__name__, error)
    # keep_open: one descriptor across code() calls, none once close_file().
    import os
    before = len(os.listdir("/proc/self/fd"))
    kept = archive.Archive(path, keep_open=True)
    print(kept.code("one") is not None, len(os.listdir("/proc/self/fd")) - before)
    kept.close_file()
    print(kept.code("two") is not None, len(os.listdir("/proc/self/fd")) - before)
    try:
        archive.open(path.with_name("missing.csa"))
    except archive.ArchiveError as error:
        print(str(error).replace(str(path.parent), "DIR"))
""")


def test_the_archive_api_answers_as_documented(tmp_path, run):
    result = run(["-c", PROGRAM, str(tmp_path / "api.csa")])
    assert result.stdout.splitlines() == [
        "codeshare.archive Archive True",
        "['one', 'two'] 2 True False",
        "{'size': 1} ('origin', True) {'made': 'here'}",
        "42 True 1",
        "True False False",
        "2 ['one', 'two']",
        "KeyError 'three'",
        "KeyError 'three'",
        "TypeError release() takes a module name, and protect=",
        "TypeError read_ahead() takes after= and now= only",
        "TypeError Archive() takes a path (str or os.PathLike of str)",
        "True 1",
        "True 0",
        "DIR/missing.csa: cannot read the archive file: No such file or directory",
    ]


SET_RECIPES = textwrap.dedent("""
    import pathlib, sys
    import codeshare.archive as archive
    path = pathlib.Path(sys.argv[1])
    code = compile("def f():\\n    return [x for x in {16, 8, 0, 1}]\\n", "sets.py", "exec")
    function = next(constant for constant in code.co_consts if hasattr(constant, "co_consts"))
    constant = next(constant for constant in function.co_consts if type(constant) is frozenset)
    compiled = tuple(constant)
    # None: the .pyc's order; recipes that cannot give the set back (a list
    # in it, another order, more rebuilds than the compiler makes) are passed
    # over for the set's own; the set's.
    for set_recipes in (None, {"sets": [([[]], 1), (compiled[::-1], 0), (compiled, 3)]}, {"sets": [(compiled, 0)]}):
        archive.write(path, [("sets", code, None)], set_recipes=set_recipes)
        namespace = {}
        exec(archive.open(path).code("sets"), namespace)
        print(namespace["f"]())
""")


def test_constant_sets_are_written_in_the_order_given_where_it_gives_the_set_back(tmp_path, run):
    result = run(["-c", SET_RECIPES, str(tmp_path / "sets.csa")])
    assert result.stdout.splitlines() == ["[0, 1, 8, 16]", "[16, 8, 0, 1]", "[16, 8, 0, 1]"]
