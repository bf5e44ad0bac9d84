"""Beyond the eight workloads: a short program of each of more popular
packages, dumped and run plain and served, interleaved.

    python wider.py --workdir DIR [--runs N] [--no-bytecode] [--json OUT] [NAME...]

Each program is a `-c` statement run in its own directory under DIR, where
its archive is dumped. The run stops unless every archived module a served
run imports is served without a search (workloads.py's served_output), and
if a served run prints otherwise than plain (startup.py's comparison:
stdout, stderr, exit status). Reports the median of each pair's ratio, served / plain, of
the whole process: a check of exactness first, a measure second (the
packages are those of wider-requirements.txt, installed with codeshare in
one venv; plain runs the same venv without the archive). Also the time
its one dump took (`python -m codeshare dump`, the program run and the
archive written), against the plain run's median.

--no-bytecode: every process (dumps, plain and served runs) finds no .pyc
and writes none (PYTHONPYCACHEPREFIX names an empty directory under DIR,
PYTHONDONTWRITEBYTECODE is set), as in an image installed without them
(`pip install --no-compile`) on a read-only file system: plain import
compiles every module at every start.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from startup import compare
from workloads import clean_environment, enter_dump_directory, served_output

PROGRAMS = {
    "pandas": "import pandas as pd; print(pd.DataFrame({'a': [3, 1, 2]}).sort_values('a').to_string())",
    "matplotlib": ("import io, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
                   "plt.plot([1, 2]); plt.savefig(io.BytesIO()); print(len(plt.rcParams))"),
    "scipy": ("import scipy.stats, scipy.optimize; print(round(scipy.stats.norm.cdf(1.0), 6), "
              "scipy.optimize.minimize_scalar(lambda x: (x - 2) ** 2).x.round(3))"),
    "django": ("import django; from django.conf import settings; "
               "settings.configure(TEMPLATES=[{'BACKEND': 'django.template.backends.django.DjangoTemplates'}]); "
               "django.setup(); from django.db import models; from django.template import Template, Context; "
               "print(Template('{{ x }}').render(Context({'x': 5})))"),
    "requests": "import requests; print(requests.Session().headers)",
    "httpx": "import httpx; print(httpx.URL('https://a.b/c?d=1').params)",
    "aiohttp": "import aiohttp; print(aiohttp.ClientTimeout(total=5))",
    "tornado": "import tornado.web, tornado.httpserver; print(tornado.web.Application().settings)",
    "black": "import black; print(black.format_str('x = {  1:2 }', mode=black.Mode()), end='')",
    "mypy": "import mypy.api; print(mypy.api.run(['-c', 'x: int = 1'])[0], end='')",
    "pytest": "import pytest, _pytest.config; print(len(_pytest.config.default_plugins))",
    "sphinx": ("import sphinx.application, docutils.core; "
               "print(docutils.core.publish_string('*hi*', writer_name='pseudoxml').decode(), end='')"),
    "jsonschema": "import jsonschema; jsonschema.validate(3, {'type': 'integer'}); print('valid')",
    "openpyxl": "import openpyxl; print(openpyxl.Workbook().active.title)",
    "pygments": ("import pygments, pygments.lexers, pygments.formatters; print(pygments.highlight("
                 "'x = 1', pygments.lexers.PythonLexer(), pygments.formatters.TerminalFormatter()), end='')"),
    "yaml": "import yaml; print(yaml.safe_dump({'b': [1, 2], 'a': None}), end='')",
    "cryptography": "from cryptography.fernet import Fernet; print(len(Fernet.generate_key()))",
}


def dumped(python, name, directory, environment):
    """The archive of program `name`, dumped in `directory` with
    `environment`, and the seconds the dump took."""
    os.makedirs(directory, exist_ok=True)
    enter_dump_directory(directory)
    archive = os.path.join(directory, "archive.csa")
    started = time.perf_counter()
    subprocess.run([python, "-m", "codeshare", "dump", "-o", archive, "-c", PROGRAMS[name]],
                   env=environment, check=True, capture_output=True)
    took = time.perf_counter() - started
    # A directory changed within 2 s of the dump's look is listed at every
    # run (RECENT_NS in resolution.py): a deployment dumps long before.
    time.sleep(2)
    return archive, took


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true", help="no .pyc read or written by any process")
    parser.add_argument("--json")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(PROGRAMS))
    options = parser.parse_args()
    unknown = [name for name in options.names if name not in PROGRAMS]
    if unknown:
        parser.error(f"no program named {', '.join(unknown)}; they are {', '.join(PROGRAMS)}")
    python = sys.executable
    extra = {}
    if options.no_bytecode:
        extra = {"PYTHONPYCACHEPREFIX": os.path.join(options.workdir, "no-bytecode"), "PYTHONDONTWRITEBYTECODE": "1"}
        os.makedirs(extra["PYTHONPYCACHEPREFIX"], exist_ok=True)
    # One environment for the dumps, the check and the timed runs (startup.compare
    # runs plain and served in this process's): none of the caller's PYTHON* variables.
    environment = clean_environment(**extra)
    os.environ.clear()
    os.environ.update(environment)
    results = {}
    print(f"whole process, served / plain (median of {options.runs} pairs' ratios; output identical, all served"
          f"{'; no .pyc read or written' if options.no_bytecode else ''}):")
    for name in options.names or PROGRAMS:
        argv = ["-c", PROGRAMS[name]]
        archive, dump_s = dumped(python, name, os.path.join(options.workdir, name), environment)
        served_output(python, argv, {**environment, "CODESHARE_ARCHIVE": archive})
        result = results[name] = {**compare([python, *argv], archive, options.runs), "dump_s": dump_s}
        print(f"  {name:13s} plain {result['plain_ms']:7.1f} ms  codeshare {result['codeshare_ms']:7.1f} ms  "
              f"{result['ratio']:.3f}  dump {dump_s:5.2f} s ({1000 * dump_s / result['plain_ms']:4.1f}x plain)",
              flush=True)
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"runs": options.runs, "no_bytecode": options.no_bytecode, "programs": results}, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
