"""Runtime dependencies are what the product imports: no fewer, and no more."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("streamer_app", "streamer", "transcoder", "cdn_edge", "manifests", "drm")


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requires() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    return {_normal(re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0]) for line in lines}


def imported_distributions() -> dict[str, set[str]]:
    """The distributions whose modules the product imports, each with a module importing it."""
    owners = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in PRODUCT or top == "__future__":
                        continue
                    assert top in owners, f"{path.relative_to(ROOT)} imports {top}: not installed"
                    for dist in owners[top]:
                        found.setdefault(_normal(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_install_requires_is_what_the_product_imports() -> None:
    imported = imported_distributions()
    declared = install_requires()
    missing = {dist: sorted(paths)[0] for dist, paths in imported.items() if dist not in declared}
    assert not missing, f"imported by the product but not in install_requires: {missing}"
    unused = declared - set(imported)
    assert not unused, f"in install_requires but imported by no product module: {unused}"
