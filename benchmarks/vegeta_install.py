"""vegeta (Apache-2.0, github.com/tsenart/vegeta), pinned, built once with `go install`.

The binary is kept as `${STREAMER_CACHE:-~/.cache/streamer}/bin/vegeta-<version>`, as
scripts/services keeps versitygw: a new pin builds a new file, an old one is never reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.12.0"
INSTALL_TIMEOUT_S = 600.0  # a cold module download and build; about a second when cached
GO_LOCATIONS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")  # the tarball's, Debian's: off PATH


class VegetaUnavailable(RuntimeError):
    """vegeta is not installed and cannot be built here."""


def cache_dir() -> Path:
    return Path(os.environ.get("STREAMER_CACHE") or Path.home() / ".cache" / "streamer")


def vegeta_path() -> Path:
    return cache_dir() / "bin" / f"vegeta-{VEGETA_VERSION}"


def ensure_vegeta() -> Path:
    """The pinned vegeta binary, built with `go install` on first use."""
    binary = vegeta_path()
    if binary.exists():
        return binary
    go = shutil.which("go") or next((p for p in GO_LOCATIONS if Path(p).exists()), None)
    if go is None:
        raise VegetaUnavailable(
            f"vegeta {VEGETA_VERSION} is not at {binary} and there is no `go` on PATH to build "
            "it: install Go (https://go.dev/dl/, or `apt-get install -y golang`), or put a "
            f"vegeta {VEGETA_VERSION} binary at {binary}"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vegeta-build-", dir=binary.parent) as build:
        env = {**os.environ, "GOBIN": build}
        try:
            subprocess.run(
                [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
                env=env, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise VegetaUnavailable(
                f"`go install {VEGETA_MODULE}@{VEGETA_VERSION}` failed with status "
                f"{exc.returncode}:\n{exc.stderr[-2000:]}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise VegetaUnavailable(
                f"`go install {VEGETA_MODULE}@{VEGETA_VERSION}` did not finish within "
                f"{INSTALL_TIMEOUT_S:.0f} s"
            ) from exc
        os.replace(Path(build) / "vegeta", binary)  # same directory: atomic
    return binary
