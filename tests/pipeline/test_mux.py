from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import MediaProcessingError, UnsupportedLanguageError
from pipeline.media.extract import extract_audio
from pipeline.media.probe import probe_media
from pipeline.mux import AudioTrack, EarlierOutput, KeptPicture, Picture, mux, start_picture, video_reencode_reason
from pipeline.subtitles import Cue, write_subtitles
from pipeline.timefit import plan_fit
from pipeline.timeline import FitPlan, LineTiming
from tests.factories import ffmpeg, frame_times, tone, video_md5
from tests.pipeline.conftest import Media


def _streams(path: Path) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["streams"]


def _dub_wav(path: Path, seconds: float, freq: float = 500.0) -> Path:
    tone(seconds, freq, 48_000, amplitude=0.3).write(str(path))
    return path


@pytest.mark.parametrize("name", ["mp4", "mkv", "mov", "webm_vp9"])
def test_mux_copies_video_and_tags_tracks(media: Media, tmp_path: Path, name: str):
    source = getattr(media, name)
    info = probe_media(source)
    dub = _dub_wav(tmp_path / "dub.wav", info.duration)
    out = mux(source, [AudioTrack(path=dub, language="es")], tmp_path / "clip.es.mp4", original_audio=True)
    assert video_md5(out) == video_md5(source)  # bit-identical video packets
    audio = [s for s in _streams(out) if s["codec_type"] == "audio"]
    assert [s["tags"]["language"] for s in audio] == ["spa", "eng" if name == "mkv" else "und"]
    assert [s["disposition"]["default"] for s in audio] == [1, 0]
    assert [s["tags"].get("title", s["tags"].get("handler_name")) for s in audio] == ["Spanish (dub)", "Original"]
    assert audio[0]["codec_name"] == "aac"
    assert probe_media(out).duration == pytest.approx(info.duration, abs=0.05)
    assert not list(tmp_path.glob(".*partial*"))  # temporary file renamed away


def test_mux_several_languages_without_original(media: Media, tmp_path: Path):
    tracks = [
        AudioTrack(path=_dub_wav(tmp_path / "fr.wav", 3.0, 400), language="fr"),
        AudioTrack(path=_dub_wav(tmp_path / "de.wav", 3.0, 600), language="deu"),
    ]
    out = mux(media.mp4, tracks, tmp_path / "clip.multi.mp4")
    audio = [s for s in _streams(out) if s["codec_type"] == "audio"]
    assert [s["tags"]["language"] for s in audio] == ["fre", "ger"]
    # first track really is the French dub (400 Hz)
    clip = extract_audio(out, sample_rate=16_000)
    assert np.argmax(np.abs(np.fft.rfft(clip.samples))) * 16_000 / clip.num_frames == pytest.approx(400, abs=2)


def test_mux_original_track_is_the_source_audio(media: Media, tmp_path: Path):
    out = mux(
        media.mp4,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", 3.0), language="es")],
        tmp_path / "o.mp4",
        original_audio=True,
        original_language="en",
    )
    streams = _streams(out)
    original = streams[-1]
    assert original["tags"]["language"] == "eng"
    kept = extract_audio(out, stream_index=original["index"])
    source = extract_audio(media.mp4)
    assert np.corrcoef(kept.samples[: source.num_frames], source.samples[: kept.num_frames])[0, 1] > 0.99


def test_mux_portrait_keeps_rotation(media: Media, tmp_path: Path):
    out = mux(media.portrait, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", 3.0), language="es")], tmp_path / "p.mp4")
    assert probe_media(out).video.display_size == (240, 320)
    assert video_md5(out) == video_md5(media.portrait)


def test_mux_reencodes_vp8(media: Media, tmp_path: Path):
    info = probe_media(media.webm_vp8)
    assert video_reencode_reason(info) == "vp8 video cannot be stored in MP4"
    out = mux(
        media.webm_vp8,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", info.duration), language="es")],
        tmp_path / "v.mp4",
        original_audio=True,
    )
    streams = _streams(out)
    assert [s["codec_name"] for s in streams] == ["h264", "aac", "aac"]  # vorbis original re-encoded too
    assert probe_media(out).duration == pytest.approx(info.duration, abs=0.05)


def test_mux_audio_only_gives_m4a(media: Media, tmp_path: Path):
    with pytest.raises(ValueError, match=r"\.m4a"):
        mux(media.m4a, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", 3.0), language="es")], tmp_path / "a.mp4")
    out = mux(
        media.m4a,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", 3.0), language="es")],
        tmp_path / "a.m4a",
        original_audio=True,
    )
    assert [s["codec_type"] for s in _streams(out)] == ["audio", "audio"]
    assert probe_media(out).duration == pytest.approx(3.0, abs=0.05)


def test_mux_burns_subtitles(media: Media, tmp_path: Path):
    subs = write_subtitles([Cue(start=0.0, end=3.0, text="HELLO WORLD")], tmp_path / "s.srt")
    out = mux(
        media.mp4,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", 3.0), language="es")],
        tmp_path / "b.mp4",
        subtitles_to_burn=subs,
    )
    assert video_md5(out) != video_md5(media.mp4)
    assert probe_media(out).duration == pytest.approx(3.0, abs=0.05)

    def frame(path: Path) -> np.ndarray:
        raw = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-ss",
                "1.0",
                "-i",
                str(path),
                "-frames:v",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "gray",
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        return np.frombuffer(raw, np.uint8).reshape(240, 320).astype(float)

    diff = np.abs(frame(out) - frame(media.mp4))
    assert diff[180:].mean() > 3 * diff[:120].mean() + 1  # text drawn at the bottom, picture otherwise alike


def _slowed_plan() -> FitPlan:
    return plan_fit([LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=3.0)], media_duration=3.0)


def _assert_frames_retimed(out: Path, source: Path, plan: FitPlan) -> None:
    """Every frame of `source` is in `out`, shown at the plan's output time of its own time (on the source file's
    clock, which starts at its earliest stream: ffmpeg shifts that to 0)."""
    start = probe_media(source).start_time
    expected = [plan.to_output_time(t - start) for t in frame_times(source)]
    assert frame_times(out) == pytest.approx(expected, abs=2e-4)


@pytest.mark.parametrize("name", ["mp4", "mkv", "mov", "webm_vp9", "portrait"])
def test_a_slowed_picture_is_retimed_without_re_encoding(media: Media, tmp_path: Path, name: str):
    source = getattr(media, name)
    plan = _slowed_plan()
    assert plan.duration == pytest.approx(3.4)
    assert video_reencode_reason(probe_media(source)) is None
    assert start_picture(source, tmp_path, plan=plan) is None  # nothing to encode beforehand
    out = mux(source, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
              tmp_path / "slow.mp4", original_audio=True, plan=plan)  # fmt: skip
    assert video_md5(out) == video_md5(source)  # the same packets: only their timestamps changed
    _assert_frames_retimed(out, source, plan)
    info = probe_media(out)
    assert info.duration == pytest.approx(plan.duration, abs=0.05)
    assert [a.duration for a in info.audio] == pytest.approx([3.4, 3.4], abs=0.05)
    assert info.audio[0].language == "spa"
    assert info.video.display_size == probe_media(source).video.display_size  # a portrait stays upright


def test_b_frames_are_retimed_in_the_order_they_are_shown(tmp_path: Path):
    """x264's usual output stores frames out of display order (B-frames): each packet's display and decode times
    must both be mapped, or frames are shown at the times of others."""
    source = tmp_path / "b.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3", "-c:v", "libx264", "-preset", "veryfast",
           "-bf", "3", str(source))  # fmt: skip
    plan = _slowed_plan()
    out = mux(source, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
              tmp_path / "slow.mp4", plan=plan)  # fmt: skip
    assert video_md5(out) == video_md5(source)
    _assert_frames_retimed(out, source, plan)


def test_a_coarse_time_base_is_retimed_at_full_precision(tmp_path: Path):
    """AVI counts time in frames (1/25 s): slowed frames must still land between two frames of the source."""
    avi = tmp_path / "clip.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3", "-c:v", "mpeg4", str(avi))
    plan = plan_fit([LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=2.6)], media_duration=3.0)
    assert plan.has_slowdown
    out = mux(avi, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
              tmp_path / "slow.mp4", plan=plan)  # fmt: skip
    assert video_md5(out) == video_md5(avi)
    _assert_frames_retimed(out, avi, plan)


@pytest.mark.parametrize("alongside", [False, True], ids=["encoded-by-the-mux", "picture-started-alongside"])
def test_a_picture_that_is_re_encoded_anyway_is_retimed_in_the_encode(media: Media, tmp_path: Path, alongside: bool):
    plan = _slowed_plan()
    picture = start_picture(media.webm_vp8, tmp_path, plan=plan) if alongside else None
    out = mux(
        media.webm_vp8,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
        tmp_path / "slow.mp4",
        original_audio=True,
        plan=plan,
        picture=picture,
    )
    if picture is not None:
        assert video_md5(out) == video_md5(picture.path)  # copied, not encoded a second time
    info = probe_media(out)
    assert info.video.codec == "h264"
    assert info.video.duration == pytest.approx(3.4, abs=0.08)
    assert [a.duration for a in info.audio] == pytest.approx([3.4, 3.4], abs=0.05)
    # constant frame rate: each slowed source frame is shown by repeated frames, at the plan's time
    assert max(abs(a - b) for a, b in zip(frame_times(out)[::5], np.arange(0, 3.4, 0.2), strict=False)) < 0.021


@pytest.mark.parametrize("change", ["burn-subtitles", "slow-down"])
def test_odd_sized_picture_is_padded_to_even_sides_only_when_re_encoded(tmp_path: Path, change: str):
    odd = tmp_path / "odd.mp4"  # 4:4:4 H.264 holds odd sides; the 4:2:0 re-encode cannot
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=321x241:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv444p", str(odd))  # fmt: skip
    subs = write_subtitles([Cue(start=0.0, end=3.0, text="HOLA")], tmp_path / "s.srt")
    plan = _slowed_plan() if change == "slow-down" else None
    burn = subs if change == "burn-subtitles" else None
    picture = start_picture(odd, tmp_path, plan=plan, subtitles_to_burn=burn)
    seconds = plan.duration if plan else 3.0
    out = mux(odd, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", seconds), language="es")], tmp_path / "o.mp4",
              plan=plan, subtitles_to_burn=burn, picture=picture)  # fmt: skip
    video = probe_media(out).video
    # a slow-down only retimes the copied frames
    assert (video.codec, video.width, video.height) == ("h264", 322, 242) if burn else ("h264", 321, 241)
    assert video.duration == pytest.approx(seconds, abs=0.08)


def test_a_picture_is_started_only_when_it_must_change_and_a_cancelled_one_stops(media: Media, tmp_path: Path):
    assert start_picture(media.mp4, tmp_path) is None  # nothing to re-encode: the mux copies the input's
    assert start_picture(media.mp4, tmp_path, plan=_slowed_plan()) is None  # retimed as it is copied
    picture = start_picture(media.webm_vp8, tmp_path, plan=_slowed_plan())
    assert picture is not None and "vp8" in picture.reason
    picture.cancel()
    with pytest.raises(MediaProcessingError, match="re-encode the picture"):
        picture.wait()  # killed: what a mux waiting for it would report


def test_an_earlier_output_retimed_the_same_way_lends_its_picture(media: Media, tmp_path: Path):
    source = media.webm_vp8  # re-encoded whatever the plan: what an earlier output can spare
    plan = _slowed_plan()
    first = mux(source, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
                tmp_path / "first.mp4", plan=plan)  # fmt: skip
    earlier = EarlierOutput(path=first, plan=plan)
    kept = start_picture(source, tmp_path, plan=plan, earlier=earlier)
    assert isinstance(kept, KeptPicture)
    second = mux(source, [AudioTrack(path=_dub_wav(tmp_path / "e.wav", plan.duration, 700.0), language="es")],
                 tmp_path / "second.mp4", plan=plan, picture=kept)  # fmt: skip
    assert video_md5(second) == video_md5(first)
    assert probe_media(second).audio[0].duration == pytest.approx(3.4, abs=0.05)

    slower = plan_fit([LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=3.5)], media_duration=3.0)
    assert slower.has_slowdown and slower.slowdowns != plan.slowdowns
    subs = write_subtitles([Cue(start=0.0, end=1.0, text="HOLA")], tmp_path / "s.srt")
    not_kept = [
        {"plan": slower, "earlier": earlier},  # another retiming
        {"plan": plan, "earlier": earlier, "subtitles_to_burn": subs},  # the text changed the picture
        {"plan": plan, "earlier": EarlierOutput(path=tmp_path / "gone.mp4", plan=plan)},
        {"plan": plan, "earlier": EarlierOutput(path=media.mp4, plan=plan)},  # 3.0 s: not the plan's 3.4 s
    ]
    for arguments in not_kept:
        picture = start_picture(source, tmp_path, **arguments)
        assert isinstance(picture, Picture), arguments
        picture.cancel()


def test_mux_failure_leaves_no_file(media: Media, tmp_path: Path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEnot really")
    with pytest.raises(MediaProcessingError):
        mux(media.mp4, [AudioTrack(path=bad, language="es")], tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == [bad]


def test_mux_bad_arguments(media: Media, tmp_path: Path):
    with pytest.raises(ValueError, match="at least one"):
        mux(media.mp4, [], tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="does not exist"):
        mux(media.mp4, [AudioTrack(path=tmp_path / "nope.wav", language="es")], tmp_path / "x.mp4")
    AudioClip(np.zeros(10, np.float32), 16_000).write(str(tmp_path / "z.wav"))
    with pytest.raises(UnsupportedLanguageError, match="not an ISO 639"):
        mux(media.mp4, [AudioTrack(path=tmp_path / "z.wav", language="xx-klingon")], tmp_path / "x.mp4")


def test_mux_applies_hundreds_of_slowdowns(media: Media, tmp_path: Path):
    """A long video can slow the picture for hundreds of lines; the retime expression must still parse (a flat sum
    of more than ~64 terms does not in ffmpeg) and keep every frame where the plan puts it."""
    from pipeline.timeline import VideoSlowdown

    spans = tuple(
        VideoSlowdown(start=0.01 + i * 0.0095, end=0.015 + i * 0.0095, output_duration=0.008) for i in range(300)
    )
    plan = FitPlan(source_duration=3.0, duration=3.0 + sum(s.added for s in spans), max_speedup=1.25, lines=(),
                   slowdowns=spans)  # fmt: skip
    out = mux(
        media.mp4,
        [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
        tmp_path / "slow.mp4",
        plan=plan,
    )
    assert video_md5(out) == video_md5(media.mp4)
    _assert_frames_retimed(out, media.mp4, plan)


def test_a_plan_longer_than_one_command_line_is_retimed_in_several_copies(media: Media, tmp_path: Path):
    """A long video slowed in more places than one command-line argument can hold (Linux: 128 KiB) is retimed
    in several copies of its picture; the rotation of a portrait video survives them."""
    from pipeline.mux import SPANS_PER_RETIME_PASS, _retime_passes
    from pipeline.timeline import VideoSlowdown

    spans = tuple(
        VideoSlowdown(start=0.01 + i * 0.0039, end=0.0115 + i * 0.0039, output_duration=0.0025) for i in range(700)
    )
    plan = FitPlan(source_duration=3.0, duration=3.0 + sum(s.added for s in spans), max_speedup=1.25, lines=(),
                   slowdowns=spans)  # fmt: skip
    assert len(_retime_passes(plan.slowdowns)) == 3
    out = mux(media.portrait, [AudioTrack(path=_dub_wav(tmp_path / "d.wav", plan.duration), language="es")],
              tmp_path / "slow.mp4", plan=plan)  # fmt: skip
    assert video_md5(out) == video_md5(media.portrait)
    _assert_frames_retimed(out, media.portrait, plan)
    assert probe_media(out).video.display_size == (240, 320)
    # the longest numbers a pass can hold (a 30-hour video) still fit in one argument
    far = [VideoSlowdown(start=99_999.123456 + i, end=99_999.654321 + i, output_duration=1.987654)
           for i in range(SPANS_PER_RETIME_PASS)]  # fmt: skip
    assert len(_retime_passes(far)[0]) < 128 * 1024


def test_relative_paths_with_a_colon_are_files_to_ffmpeg_not_urls(media: Media, tmp_path: Path, monkeypatch):
    """`talk:1.mp4` or an output folder `out:es, it's [1]` given relative (to the shell's working directory):
    ffmpeg would read them as URLs of protocol `talk` / `out`. Burned subtitles put the folder's path, with its
    quote, comma and brackets, into a filtergraph and a filter script."""
    import shutil

    from pipeline.records import DubRequest

    monkeypatch.chdir(tmp_path)
    folder = "out:es, it's [1]"
    shutil.copyfile(media.mp4, tmp_path / "talk:1.mp4")
    (tmp_path / folder).mkdir()
    subs = write_subtitles([Cue(start=0.0, end=3.0, text="HELLO")], Path(folder, "s.srt"))
    assert extract_audio("talk:1.mp4").duration == pytest.approx(3.0, abs=0.05)
    picture = start_picture("talk:1.mp4", Path(folder), subtitles_to_burn=subs)
    out = mux("talk:1.mp4", [AudioTrack(path=_dub_wav(Path(folder, "d.wav"), 3.0), language="es")],
              f"{folder}/talk:1.es.mp4", subtitles_to_burn=subs, picture=picture)  # fmt: skip
    assert out == tmp_path / folder / "talk:1.es.mp4"
    assert probe_media(f"{folder}/talk:1.es.mp4").duration == pytest.approx(3.0, abs=0.05)
    request = DubRequest(input=Path("talk:1.mp4"), targets=("es",), out_dir=Path(folder))
    assert request.input == tmp_path / "talk:1.mp4" and request.out_dir == tmp_path / folder
