"""Build hooks: the native data plane (``hornet._native``, the Rust crate in ``native/``).

With cargo on PATH, ``pip install .`` builds the extension through setuptools-rust. Without
cargo, or if that build fails, the install goes on as pure Python and says so once: the
reference engine (``hornet.core``) is then the only one (``hornet info`` shows which is
active). Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import shutil
import sys

from setuptools import setup

NOTICE = (
    "hornet: {why}; installing the pure-Python engine only "
    "(install a Rust toolchain and reinstall for the native data plane)"
)


#: The setup.py commands that build (pip runs setup.py for metadata too: no notice then).
_BUILDS = {"bdist_wheel", "editable_wheel", "build", "build_ext", "install", "develop"}


def _rust_extensions() -> list[object]:
    if shutil.which("cargo") is None:
        if _BUILDS & set(sys.argv[1:]):
            print(NOTICE.format(why="cargo not found"), file=sys.stderr)
        return []
    from setuptools_rust import Binding, RustExtension

    return [
        RustExtension(
            "hornet._native",
            path="native/Cargo.toml",
            binding=Binding.PyO3,
            py_limited_api=True,
            optional=True,  # a failed build falls back to the pure-Python engine
            debug=False,  # release profile for editable installs too (the test command's)
            args=["--locked"],
        )
    ]


setup(rust_extensions=_rust_extensions(), zip_safe=False)
