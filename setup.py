"""Builds codeshare._core with SwiftPM (Embedded Swift, release) for the
interpreter running this script, and installs it inside the package.

setup.cfg holds the metadata; this file only adds the Swift build, which a
declarative config cannot express.
"""
import hashlib
import os
import shutil
import subprocess
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


def swift_executable():
    found = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    if not os.path.exists(found):
        raise SystemExit("codeshare: the Swift toolchain (swift) is not on PATH nor at /opt/swift")
    return found


class SwiftBuild(build_ext):
    """build_ext for the one Swift extension: `swift build`, then copy."""

    def build_extension(self, ext):
        include = sysconfig.get_paths()["include"]
        # One scratch directory per interpreter: each build bakes in its headers.
        scratch = os.path.join(ROOT, ".build-" + hashlib.sha1(include.encode()).hexdigest()[:10])
        env = dict(os.environ, CODESHARE_PYTHON_INCLUDE=include)
        env.pop("CODESHARE_SWIFT_TEST", None)
        subprocess.check_call(
            [swift_executable(), "build", "-c", "release", "--product", "CodeShare",
             "--scratch-path", scratch],
            cwd=ROOT, env=env)
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(scratch, "release", "libCodeShare.so"), target)


class BuildWithStartupHook(build_py):
    """Also puts codeshare.pth at the root of site-packages: the start-up
    hook, which costs one environment lookup when CODESHARE_ARCHIVE is unset."""

    def run(self):
        super().run()
        self.copy_file(os.path.join(ROOT, "python", "codeshare.pth"),
                       os.path.join(self.build_lib, "codeshare.pth"))


setup(
    ext_modules=[Extension("codeshare._core", sources=[])],
    cmdclass={"build_ext": SwiftBuild, "build_py": BuildWithStartupHook},
)
