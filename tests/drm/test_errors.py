import ast
import pathlib

import pytest

import drm
from drm import errors

DRM_DIR = pathlib.Path(drm.__file__).parent
FORBIDDEN = {"os", "time", "socket", "subprocess", "asyncio", "aiohttp", "sqlite3", "streamer"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.DrmError, 500),
        (errors.KeyLengthError, 500),
        (errors.InvalidKeyId, 500),
        (errors.KeyScheduleError, 500),
        (errors.DecryptionError, 500),
        (errors.KeyRingError, 500),
        (errors.UnknownKekError, 500),
        (errors.KeyUnwrapError, 500),
        (errors.InvalidClaims, 500),
        (errors.TokenError, 401),
        (errors.TokenMalformed, 401),
        (errors.TokenSignatureInvalid, 401),
        (errors.TokenExpired, 401),
        (errors.TokenClaimMismatch, 403),
    ],
)
def test_http_status(error: type[errors.DrmError], status: int) -> None:
    assert issubclass(error, errors.DrmError)
    assert error.http_status == status


def test_public_surface() -> None:
    assert sorted(drm.__all__) == drm.__all__
    for name in drm.__all__:
        assert hasattr(drm, name)


@pytest.mark.parametrize("module", sorted(DRM_DIR.glob("*.py")), ids=lambda p: p.name)
def test_drm_is_pure(module: pathlib.Path) -> None:
    tree = ast.parse(module.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
