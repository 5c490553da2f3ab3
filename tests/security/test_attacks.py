"""The attack suite: every attempt of `attempts.py` against the Python edge and against the
nginx tier in front of it; no key, object byte or secret may come back to anyone not entitled.

Run `pytest tests/security -q`; the run ends with the figures ("attempts made N, leaked 0").
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.security import figures
from tests.security.attempts import Attempt, Context, Session, bearer, describe
from tests.security.conftest import SUITE
from tests.security.material import NOBODY, Material, Principal, item_names
from tests.security.raw_http import Reply
from tests.security.table import build_attempts, controls, genuine_bearers
from tests.security.world import (
    SESSION_TTL_S,
    Front,
    IngestWorker,
    World,
    issue_ingest_token,
    open_job_store,
    open_object_store,
)

pytestmark = pytest.mark.timeout(300)


def material_of(world: World) -> Material:
    material = Material()
    for letter, track in world.tracks.items():
        built = track.built
        for kid, content_key in built.clear_keys.items():
            name = item_names(letter, {kid: track.keys[kid]}, ())[0]
            material.add(name, content_key)
            material.add_marker(name, f"keys/{kid}")  # a media playlist names its keys
        for key, body in built.stored.items():
            material.add(f"{letter}:obj:{key}", body)
    for name, data in world.secret_files().items():
        material.add(f"secret:{name}", data)
    return material


def open_sessions(world: World, front: Front) -> dict[str, Session]:
    sessions: dict[str, Session] = {}

    def open_(name: str, letter: str, tier: str, codecs: list[str] | None = None) -> None:
        track = world.tracks[letter]
        token, doc = world.open_session(front, track.track_id, tier, codecs)
        principal = Principal(name, letter, tier, tuple(doc["variants"]))
        sessions[name] = Session(token, doc["session_id"], principal)

    for letter in ("A", "B"):
        open_(f"free-{letter}", letter, "free")
        open_(f"premium-{letter}", letter, "premium")
    open_("free-A-aac", "A", "free", ["mp4a.40.2"])
    # Genuine sessions whose tokens expired: opened while the edge's clock ran behind.
    world.clock.offset = -(SESSION_TTL_S + world.tracks["A"].built.record.duration_s + 7200)
    try:
        open_("expired-free-A", "A", "free")
        open_("expired-premium-A", "A", "premium")
    finally:
        world.clock.offset = 0.0
    return sessions


def submit_job(world: World) -> str:
    token = issue_ingest_token(world.secrets.platform_key, "label-a", 3600, time.time())
    reply = world.edge.request(
        "POST", "/v1/ingest?filename=legit.wav", bearer(token), b"RIFF" + b"\0" * 64
    )
    assert reply.status == 202, reply.body
    job_id: str = json.loads(reply.body)["job_id"]
    return job_id


def judge(material: Material, attempt: Attempt, reply: Reply) -> list[str]:
    """Why this reply is a leak; empty when it is not."""
    if not reply.ok:
        return []
    reasons = sorted(material.leaked(attempt.principal, reply.body))
    if attempt.leak_if_2xx:
        reasons.append(f"answered {reply.status}")
    if attempt.principal is NOBODY and reply.body.lstrip().startswith(b"#EXTM3U"):
        reasons.append("a playlist")
    return reasons


@pytest.fixture(scope="module")
def material(attack_world: World) -> Material:
    return material_of(attack_world)


@pytest.fixture(scope="module")
def job_id(attack_world: World) -> str:
    return submit_job(attack_world)


@pytest.mark.parametrize("front_name", ["python edge", "nginx tier"])
def test_no_attempt_leaks_keys_bytes_or_secrets(
    attack_world: World, material: Material, job_id: str, front_name: str
) -> None:
    front = {f.name: f for f in attack_world.fronts}[front_name]
    ctx = Context(attack_world, open_sessions(attack_world, front), job_id)
    ctx.bearer.update(genuine_bearers(attack_world))

    # The detector sees material when it is there: every entitled fetch carries it.
    missed: list[tuple[object, ...]] = []
    for attempt, expected in controls(ctx):
        reply = front.request(attempt.method, attempt.target, list(attempt.headers))
        found = material.found(reply.body)
        if reply.status != 200 or expected not in found:
            missed.append((attempt.name, reply.status, expected))
        elif NOBODY.may_have(expected) or not material.leaked(NOBODY, reply.body):
            missed.append((attempt.name, "the detector would not flag it for nobody"))
    assert missed == []

    attempts = build_attempts(ctx)
    leaks = []
    errors = []
    statuses: Counter[str] = Counter()
    for attempt in attempts:
        reply = front.request(attempt.method, attempt.target, list(attempt.headers), attempt.body)
        statuses[f"{attempt.category} {reply.status}"] += 1
        reasons = judge(material, attempt, reply)
        if reasons:
            leaks.append({**describe(attempt), "status": reply.status, "leaked": reasons})
        if reply.status >= 500:  # bad input is a 4xx with a reason, never a server error
            errors.append({**describe(attempt), "status": reply.status})
    figures.record(SUITE, front.name, attempts=len(attempts), leaked=len(leaks))
    print(f"\n{front.name}: attempts made {len(attempts)}, leaked {len(leaks)}")
    print(json.dumps(dict(sorted(statuses.items())), indent=1))
    assert leaks == [], json.dumps(leaks[:20], indent=1)
    assert errors == [], json.dumps(errors[:20], indent=1)


# Ingest filenames: a master's name must never become a path outside the data directory.

HOSTILE_NAMES = (
    "../../../../../../tmp/{m}.wav",
    "../../{m}.wav",
    "..%2F..%2F{m}.wav",
    "..%252F..%252F{m}.wav",
    "..\\..\\..\\{m}.wav",
    "/tmp/{m}.wav",
    "/etc/passwd",
    "{m}.wav\x00.flac",
    "{m}.\x00wav",
    "{m}.wav\x00",
    "....//....//{m}.wav",
    "~/{m}.wav",
    ".",
    "..",
    "{m}/",
    "{m}" + "a" * 300,
    "{m}.wav\r\nX-Injected: 1",
    "../secrets/token_secret",
    "..\\secrets\\token_secret",
    "{m}.w/../../../av",
    "{m}.wav/..",
    "C:\\{m}.wav",
    "\\\\server\\share\\{m}.wav",
    "%2e%2e%2f{m}.wav",
    "{m}.%2e%2e%2fwav",
    "{m}.wav;../../x",
    "{m}.%00",
    "{m}.\\..\\..\\..\\x",
)
HOSTILE_TRACK_IDS = ("../../{m}", "..%2F{m}", "{m}/../../x", "/{m}", "{m}\x00", "..")


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_ingest_filenames_stay_in_the_data_directory(
    attack_world: World, tmp_path: Path, job_id: str
) -> None:
    world = attack_world
    data_dir = world.settings.data_dir
    root = data_dir.parent
    marker = f"pwned-{secrets.token_hex(4)}"
    secret_files = {p: p.read_bytes() for p in data_dir.joinpath("secrets").rglob("*")}
    outside_before = {p for p in _tree(root) if data_dir not in p.parents and p != data_dir}
    token = issue_ingest_token(world.secrets.platform_key, "label-a", 3600, time.time())

    attempts = []
    for front in world.fronts:
        for name in HOSTILE_NAMES:
            attempts.append((front, f"filename={quote(name.format(m=marker), safe='%')}"))
            attempts.append((front, f"filename={quote(name.format(m=marker), safe='')}"))
        for track_id in HOSTILE_TRACK_IDS:
            query = f"filename=x.wav&track_id={quote(track_id.format(m=marker), safe='')}"
            attempts.append((front, query))
    statuses: Counter[int] = Counter()
    for front, query in attempts:
        reply = front.request("POST", f"/v1/ingest?{query}", bearer(token), b"RIFF" + b"\0" * 64)
        statuses[reply.status] += 1

    # The jobs that were queued run (ffprobe refuses the fake master at once).
    jobs = open_job_store(world.settings)
    worker = IngestWorker(world.settings, open_object_store(world.settings), jobs, world.ring)
    ran = 0
    while worker.run_one() is not None:
        ran += 1

    escaped = [
        str(p) for p in _tree(root) - outside_before if data_dir not in p.parents and p != data_dir
    ]
    escaped += [str(p) for p in _tree(root) if marker in p.name]
    escaped += [str(p) for p in Path("/tmp").glob(f"*{marker}*")]
    escaped += [str(p) for p, data in secret_files.items() if p.read_bytes() != data]
    figures.record(SUITE, "ingest filenames", attempts=len(attempts), leaked=len(escaped))
    print(f"\ningest filenames: attempts made {len(attempts)}, leaked {len(escaped)}")
    print(f"statuses {dict(statuses)}, jobs run {ran}")
    assert escaped == []
    assert statuses[500] == 0
