"""The JobStore contract, run against every implementation in `conftest.JOB_STORES`.

Time is passed in: every test drives the lease clock by hand from `T0`.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streamer.errors import JobNotFound
from streamer.jobs.port import IngestSpec, Job, JobStore

from .conftest import MakeJobStore

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LEASE_S = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spec(track: str = "t1", **metadata: object) -> IngestSpec:
    return IngestSpec(
        master_key=f"masters/{track}-sha",
        master_sha256=f"{track}-sha",
        filename=f"{track}.flac",
        track_id=track,
        metadata=dict(metadata),
    )


# Enqueue and get


def test_enqueue_returns_a_queued_job(job_store: JobStore) -> None:
    job = job_store.enqueue(spec("t1", title="Blue in Green", bpm=72.5), at(0))
    assert re.fullmatch(r"[0-9a-f]{32}", job.job_id)
    assert job == Job(
        job_id=job.job_id,
        spec=spec("t1", title="Blue in Green", bpm=72.5),
        state="queued",
        created_at=T0,
        updated_at=T0,
    )
    assert job_store.get(job.job_id) == job


def test_job_ids_are_unique(job_store: JobStore) -> None:
    ids = {job_store.enqueue(spec(), at(0)).job_id for _ in range(20)}
    assert len(ids) == 20


def test_datetimes_come_back_aware_and_equal(job_store: JobStore) -> None:
    paris = timezone(timedelta(hours=2))
    job = job_store.enqueue(spec(), datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=paris))
    stored = job_store.get(job.job_id)
    assert stored.created_at == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert stored.created_at.utcoffset() is not None


def test_naive_datetimes_are_refused(job_store: JobStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        job_store.enqueue(spec(), datetime(2024, 5, 1, 12, 0, 0))
    job_store.enqueue(spec(), at(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        job_store.claim("w1", datetime(2024, 5, 1, 12, 0, 0), LEASE_S)


def test_unknown_job_raises_job_not_found(job_store: JobStore) -> None:
    with pytest.raises(JobNotFound) as caught:
        job_store.get("0" * 32)
    assert caught.value.job_id == "0" * 32
    assert caught.value.http_status == 404
    with pytest.raises(JobNotFound):
        job_store.heartbeat("0" * 32, "w1", at(0), LEASE_S, 10.0, None)
    with pytest.raises(JobNotFound):
        job_store.finish("0" * 32, "w1", at(0), version="v1")


def test_list_jobs_newest_first(job_store: JobStore) -> None:
    assert job_store.list_jobs() == []
    jobs = [job_store.enqueue(spec(f"t{index}"), at(index)) for index in range(5)]
    assert [job.job_id for job in job_store.list_jobs()] == [j.job_id for j in reversed(jobs)]
    assert job_store.list_jobs(limit=2) == [jobs[4], jobs[3]]
    assert job_store.list_jobs(limit=0) == []


def test_list_jobs_shows_current_state(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    claimed = job_store.claim("w1", at(1), LEASE_S)
    assert job_store.list_jobs() == [claimed]
    assert claimed is not None and claimed.job_id == job.job_id


# Claims


def test_claim_of_an_empty_queue_is_none(job_store: JobStore) -> None:
    assert job_store.claim("w1", at(0), LEASE_S) is None


def test_claim_takes_the_oldest_queued_job_and_leases_it(job_store: JobStore) -> None:
    second = job_store.enqueue(spec("t2"), at(2))
    first = job_store.enqueue(spec("t1"), at(1))
    third = job_store.enqueue(spec("t3"), at(3))
    claimed = job_store.claim("w1", at(10), LEASE_S)
    assert claimed == Job(
        job_id=first.job_id,
        spec=spec("t1"),
        state="running",
        created_at=at(1),
        updated_at=at(10),
        attempts=1,
        worker_id="w1",
        lease_until=at(10 + LEASE_S),
    )
    assert job_store.get(first.job_id) == claimed
    next_two = [job_store.claim("w2", at(11), LEASE_S) for _ in range(2)]
    assert [job.job_id for job in next_two if job] == [second.job_id, third.job_id]
    assert job_store.claim("w3", at(12), LEASE_S) is None


def test_jobs_enqueued_at_the_same_instant_are_claimed_in_order(job_store: JobStore) -> None:
    jobs = [job_store.enqueue(spec(f"t{index}"), at(0)) for index in range(5)]
    claimed = [job_store.claim("w1", at(1), LEASE_S) for _ in jobs]
    assert [job.job_id for job in claimed if job] == [job.job_id for job in jobs]


def test_no_job_is_claimed_twice_by_concurrent_threads(job_store: JobStore) -> None:
    jobs = {job_store.enqueue(spec(f"t{index}"), at(index)).job_id for index in range(40)}
    claims: dict[str, list[str]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def work(worker_id: str) -> None:
        mine = claims.setdefault(worker_id, [])
        try:
            start.wait(timeout=30)
            while (job := job_store.claim(worker_id, at(100), LEASE_S)) is not None:
                mine.append(job.job_id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{index}",)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    claimed = [job_id for mine in claims.values() for job_id in mine]
    assert sorted(claimed) == sorted(jobs)  # every job once, none twice
    assert {job_store.get(job_id).attempts for job_id in jobs} == {1}


# Leases


def test_a_live_lease_is_not_taken_over(job_store: JobStore) -> None:
    job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    assert job_store.claim("w2", at(30), LEASE_S) is None
    assert job_store.claim("w2", at(LEASE_S), LEASE_S) is None  # lapses strictly after


def test_a_lapsed_lease_is_taken_over(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    job_store.heartbeat(job.job_id, "w1", at(20), LEASE_S, 40.0, 3.5)
    taken = job_store.claim("w2", at(20 + LEASE_S + 1), LEASE_S)
    assert taken is not None
    assert (taken.job_id, taken.worker_id, taken.attempts) == (job.job_id, "w2", 2)
    assert taken.lease_until == at(20 + LEASE_S + 1 + LEASE_S)
    assert (taken.progress_percent, taken.speed_x_realtime) == (0.0, None)  # starts over


def test_queued_jobs_come_before_lapsed_ones(job_store: JobStore) -> None:
    lapsed = job_store.enqueue(spec("t1"), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    queued = job_store.enqueue(spec("t2"), at(1))
    first = job_store.claim("w2", at(1000), LEASE_S)
    second = job_store.claim("w2", at(1000), LEASE_S)
    assert first is not None and second is not None
    assert [first.job_id, second.job_id] == [queued.job_id, lapsed.job_id]


def test_heartbeat_extends_the_lease_and_records_progress(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    assert job_store.heartbeat(job.job_id, "w1", at(50), LEASE_S, 62.5, 14.2)
    stored = job_store.get(job.job_id)
    assert (stored.progress_percent, stored.speed_x_realtime) == (62.5, 14.2)
    assert (stored.lease_until, stored.updated_at) == (at(50 + LEASE_S), at(50))
    assert job_store.claim("w2", at(LEASE_S + 1), LEASE_S) is None  # renewed in time


def test_an_expired_lease_nobody_took_can_still_be_renewed(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    assert job_store.heartbeat(job.job_id, "w1", at(LEASE_S + 30), LEASE_S, 10.0, None)
    assert job_store.finish(job.job_id, "w1", at(LEASE_S + 40), version="v1")


def test_a_stale_worker_cannot_heartbeat_or_finish(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    job_store.claim("w2", at(LEASE_S + 1), LEASE_S)
    assert not job_store.heartbeat(job.job_id, "w1", at(LEASE_S + 2), LEASE_S, 99.0, 1.0)
    assert not job_store.finish(job.job_id, "w1", at(LEASE_S + 3), version="stale")
    assert not job_store.finish(job.job_id, "w1", at(LEASE_S + 3), error_code="x")
    stored = job_store.get(job.job_id)
    assert (stored.state, stored.worker_id, stored.version) == ("running", "w2", None)
    assert stored.progress_percent == 0.0


def test_a_worker_that_never_claimed_cannot_finish(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    assert not job_store.heartbeat(job.job_id, "w1", at(1), LEASE_S, 1.0, None)
    assert not job_store.finish(job.job_id, "w1", at(1), version="v1")
    assert job_store.get(job.job_id).state == "queued"


def test_max_attempts_fails_the_job_as_worker_lost(make_job_store: MakeJobStore) -> None:
    job_store = make_job_store(max_attempts=2)
    job = job_store.enqueue(spec(), at(0))
    assert job_store.claim("w1", at(0), LEASE_S) is not None
    assert job_store.claim("w2", at(100), LEASE_S) is not None
    assert job_store.claim("w3", at(200), LEASE_S) is None
    failed = job_store.get(job.job_id)
    assert (failed.state, failed.attempts, failed.error_code) == ("failed", 2, "worker_lost")
    assert failed.error_message is not None and "2 workers" in failed.error_message
    assert (failed.lease_until, failed.updated_at) == (None, at(200))
    assert not job_store.heartbeat(job.job_id, "w2", at(201), LEASE_S, 50.0, None)
    assert job_store.claim("w4", at(10_000), LEASE_S) is None  # failed for good


def test_claim_moves_on_past_a_job_it_fails(make_job_store: MakeJobStore) -> None:
    job_store = make_job_store(max_attempts=2)
    doomed = job_store.enqueue(spec("t1"), at(0))
    survivor = job_store.enqueue(spec("t2"), at(1))
    job_store.claim("w1", at(2), LEASE_S)  # doomed, attempt 1
    job_store.claim("w1", at(2), LEASE_S)  # survivor, attempt 1
    job_store.claim("w2", at(100), LEASE_S)  # doomed, attempt 2
    job_store.heartbeat(survivor.job_id, "w1", at(100), LEASE_S, 5.0, None)
    taken = job_store.claim("w3", at(300), LEASE_S)
    assert taken is not None
    assert (taken.job_id, taken.attempts) == (survivor.job_id, 2)
    assert job_store.get(doomed.job_id).state == "failed"


# Finishing


def test_finish_published(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    job_store.heartbeat(job.job_id, "w1", at(10), LEASE_S, 80.0, 20.0)
    assert job_store.finish(job.job_id, "w1", at(20), version="v20240501T120020")
    published = job_store.get(job.job_id)
    assert published == Job(
        job_id=job.job_id,
        spec=spec(),
        state="published",
        created_at=at(0),
        updated_at=at(20),
        attempts=1,
        worker_id="w1",
        lease_until=None,
        progress_percent=100.0,
        speed_x_realtime=20.0,
        version="v20240501T120020",
    )
    # A job publishes at most once, and is not claimed again.
    assert not job_store.finish(job.job_id, "w1", at(21), version="again")
    assert not job_store.heartbeat(job.job_id, "w1", at(21), LEASE_S, 100.0, None)
    assert job_store.claim("w2", at(10_000), LEASE_S) is None
    assert job_store.get(job.job_id).version == "v20240501T120020"


def test_finish_failed(job_store: JobStore) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    job_store.heartbeat(job.job_id, "w1", at(10), LEASE_S, 30.0, None)
    assert job_store.finish(
        job.job_id, "w1", at(11), error_code="silent_master", error_message="all 180 s silent"
    )
    failed = job_store.get(job.job_id)
    assert (failed.state, failed.error_code, failed.error_message) == (
        "failed",
        "silent_master",
        "all 180 s silent",
    )
    assert (failed.version, failed.lease_until, failed.progress_percent) == (None, None, 30.0)
    assert job_store.claim("w2", at(10_000), LEASE_S) is None


@pytest.mark.parametrize(
    "outcome", [{}, {"version": "v1", "error_code": "x"}, {"error_message": "no code"}]
)
def test_finish_needs_exactly_one_outcome(job_store: JobStore, outcome: dict[str, str]) -> None:
    job = job_store.enqueue(spec(), at(0))
    job_store.claim("w1", at(0), LEASE_S)
    with pytest.raises(ValueError, match="either a version"):
        job_store.finish(job.job_id, "w1", at(1), **outcome)
    assert job_store.get(job.job_id).state == "running"
