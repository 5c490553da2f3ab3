"""A shipped access-log line gives the items the Python edge records for the same request."""

from __future__ import annotations

import dataclasses

import pytest
from aiohttp import web

from cdn_edge.logship.errors import MalformedLine
from cdn_edge.logship.line_telemetry import line_telemetry, unix_ms
from cdn_edge.logship.log_line import parse_line
from cdn_edge.logship.timelines import TrackTimelines
from streamer.catalog import segment_timeline, version_record_key
from streamer.errors import StorageError
from streamer.objects.memory import InMemoryObjectStore
from streamer.objects.port import ObjectReader
from tests.edge.builders import BuiltTrack
from tests.edge.conftest import Client, ManualClock
from tests.logship.builders import line
from tests.telemetry.conftest import FlakyStore, OpenPlayback, drain
from tests.telemetry.test_cmcd import HLSJS_QUERY

HEADERS = {
    "CMCD-Object": "br=96,d=6000,ot=a,tb=160",
    "CMCD-Request": 'bl=4000,mtp=2200,nor="seg_00002.m4s",su',
    "CMCD-Session": 'cid="trk1",sf=h,sid="p-1",st=v',
    "CMCD-Status": "rtp=500",
}


def shipped(reader: ObjectReader, **overrides: object):
    parsed = parse_line(line(**overrides).rstrip(b"\n"))
    timing = TrackTimelines(reader).timing(parsed.track_id, parsed.version, parsed.object_key)
    return parsed, line_telemetry(parsed, timing)


async def test_items_mean_what_the_edge_records_for_the_same_request(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
    reader: ObjectReader,
) -> None:
    pb = await open_playback()
    session_id = pb.doc["session_id"]
    assert (await client.get(f"{pb.segments[3]}?CMCD={HLSJS_QUERY}")).status == 200
    assert (await client.get(pb.segments[4], headers=HEADERS)).status == 200
    await drain(edge_app, clock)
    edge = session_store.inner.session_telemetry(session_id)

    common = {"session_id": session_id, "rendition": "aac_96", "tier": "free"}
    by_query = shipped(reader, object="seg_00003.m4s", cmcd_query=HLSJS_QUERY, **common)[1]
    by_headers = shipped(
        reader,
        object="seg_00004.m4s",
        cmcd_object=HEADERS["CMCD-Object"],
        cmcd_request=HEADERS["CMCD-Request"],
        cmcd_session=HEADERS["CMCD-Session"],
        cmcd_status=HEADERS["CMCD-Status"],
        **common,
    )[1]

    def same_meaning(item: object) -> object:  # ids and times are the log's, not the edge's
        return dataclasses.replace(item, sample_id="x", received_ms=0)  # type: ignore[type-var]

    assert [same_meaning(s) for s in edge.cmcd] == [
        same_meaning(by_query.cmcd),
        same_meaning(by_headers.cmcd),
    ]
    assert [dataclasses.replace(d, delivered_ms=0) for d in edge.deliveries] == [
        dataclasses.replace(by_query.delivery, delivered_ms=0),
        dataclasses.replace(by_headers.delivery, delivered_ms=0),
    ]


def test_ids_and_times_come_from_the_line(reader: ObjectReader) -> None:
    parsed, items = shipped(reader, ts="1733500000.123", cmcd_query="bl%3D100")
    assert items.cmcd is not None and items.delivery is not None
    assert items.cmcd.sample_id == parsed.request_id
    assert items.cmcd.received_ms == items.delivery.delivered_ms == 1_733_500_000_123
    assert unix_ms(1733500000.123) == 1_733_500_000_123  # not ...122 by float truncation
    assert shipped(reader, request_id=parsed.request_id, ts="1733500000.123")[1].delivery == (
        items.delivery
    )


def test_init_segments_and_range_requests(reader: ObjectReader) -> None:
    _, init = shipped(reader, object="init.mp4", cmcd_query="ot%3Di")
    assert init.delivery is None and init.cmcd is not None
    assert init.cmcd.object == "aac_160/init.mp4" and init.cmcd.keys == {"ot": "i"}
    _, ranged = shipped(reader, status="206", range="bytes=0-99")
    assert ranged.delivery is not None


def test_media_playlists_are_samples_named_as_the_edge_names_them(reader: ObjectReader) -> None:
    # nginx serves media playlists from its cache now; the edge named them by rendition.
    _, playlist = shipped(reader, object="playlist.m3u8", cmcd_query="ot%3Dm")
    assert playlist.delivery is None and playlist.cmcd is not None
    assert (playlist.cmcd.route, playlist.cmcd.object) == ("playlist", "aac_160")


@pytest.mark.parametrize("status", ["304", "403", "404", "416", "500"])
def test_no_delivery_unless_the_bytes_were_served(reader: ObjectReader, status: str) -> None:
    _, items = shipped(reader, status=status, cmcd_query="bl%3D100")
    assert items.delivery is None
    assert items.cmcd is not None and items.cmcd.status == int(status)  # as the edge samples


def test_unverified_requests_give_nothing(reader: ObjectReader) -> None:
    _, items = shipped(reader, status="401", session_id="", cmcd_query="bl%3D100")
    assert items == type(items)()


def test_malformed_cmcd_is_reported_not_fatal(reader: ObjectReader) -> None:
    _, items = shipped(reader, cmcd_query="br%3D3%2C%2C", cmcd_object="br=((")
    assert items.cmcd is None and items.delivery is not None
    assert items.cmcd_problems == ("syntax", "syntax")


def test_a_session_id_no_store_takes_rejects_the_line(reader: ObjectReader) -> None:
    with pytest.raises(MalformedLine):
        shipped(reader, session_id="has spaces")


def test_unknown_versions_and_objects_have_no_timing(track: BuiltTrack) -> None:
    store = InMemoryObjectStore()
    timelines = TrackTimelines(store)
    assert timelines.timing("trk1", "v1", "aac_96/seg_00000.m4s") is None  # not published yet
    assert timelines.timing("../etc", "v1", "aac_96/seg_00000.m4s") is None
    timeline = segment_timeline(track.record)
    assert timeline["aac_96/seg_00002.m4s"] == (12.0, 6.0)
    assert "aac_96/init.mp4" not in timeline


def test_an_object_store_outage_raises_for_a_retry(track: BuiltTrack) -> None:
    class Down(InMemoryObjectStore):
        def get(self, key: str) -> bytes:
            raise StorageError(f"the store is down reading {key}")

    with pytest.raises(StorageError):
        TrackTimelines(Down()).timing("trk1", "v1", "aac_96/seg_00000.m4s")
    assert version_record_key("trk1", "v1")  # the record the edge reads too
