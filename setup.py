"""pip install . (from the repository): the Python package `kiln`.

Debian marks its Python as externally managed and PyPI may be out of reach,
so install into a venv that sees Debian's numpy, without build isolation:

    python3 -m venv --system-site-packages ~/kiln-venv
    ~/kiln-venv/bin/pip install --no-build-isolation .

The extension and libkiln are built with CMake (the dependencies of
scripts/install-deps must be installed) and libkiln is installed beside the
extension. KILN_PREBUILT=DIR takes them from an existing build folder
(scripts/build: build/) instead of building again.
"""

import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REPO = os.path.dirname(os.path.abspath(__file__))


def version():
    text = open(os.path.join(REPO, "CMakeLists.txt"), encoding="utf-8").read()
    return re.search(r"project\(kiln VERSION ([0-9.]+)", text).group(1)


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("KILN_PREBUILT")
        if build:
            build = os.path.abspath(build)
        else:
            build = os.path.abspath(os.path.join(self.build_temp, "cmake"))
            subprocess.check_call(
                ["cmake", "-S", REPO, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 "-DKILN_PYTHON=ON", "-DKILN_PYTHON_RPATH_ORIGIN=ON", "-DKILN_BUILD_TOOLS=OFF",
                 "-DKILN_BUILD_TESTS=OFF", "-DKILN_BUILD_EXAMPLES=OFF", "-DKILN_INSTALL=OFF",
                 "-DPython_EXECUTABLE=" + sys.executable])
            subprocess.check_call(["cmake", "--build", build, "--target", "_kiln"])
        built = [f for f in os.listdir(os.path.join(build, "python", "kiln")) if f.startswith("_kiln") and f.endswith(".so")]
        if not built:
            sys.exit(f"kiln: no extension in {build}/python/kiln (configure with -DKILN_PYTHON=ON)")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(build, "python", "kiln", built[0]), target)
        # libkiln under its soname (libkiln.so.MAJOR.MINOR), which the
        # extension's RUNPATH ($ORIGIN, or the build folder) finds.
        lib = os.path.realpath(os.path.join(build, "libkiln.so"))
        soname = re.match(r"(libkiln\.so\.\d+\.\d+)", os.path.basename(lib)).group(1)
        shutil.copyfile(lib, os.path.join(os.path.dirname(target), soname))


setup(
    name="kiln",
    version=version(),
    description="kiln: a model-deployment engine; drop-in for onnxruntime.InferenceSession",
    packages=["kiln"],
    package_dir={"kiln": "python/kiln"},
    package_data={"kiln": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("kiln._kiln")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy"],
    zip_safe=False,
)
