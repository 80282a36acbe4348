"""Voice announcements: Vietnamese number reading, the words of a call, and voice packs made
with the real espeak-ng and joined into one WAV (display/speech.py, display/voicepack.py).

The reading tables are what a Vietnamese speaker says, written down by hand, not derived
from the code. Pack tests need Debian's espeak-ng: without it they skip with the reason,
unless MOTCUA_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import time
import wave
from array import array
from pathlib import Path

import pytest

from display import speech, voicepack
from display.speech import announcement, announcement_text, read_number, read_ticket
from display.voicepack import CLIPS, RATE, VoicePackError
from harness.process import ROOT
from harness.services import REQUIRE_SERVICES

ARTIFACTS = ROOT / "test-artifacts"

NUMBERS = {
    0: "không",
    1: "một",
    4: "bốn",
    5: "năm",
    9: "chín",
    10: "mười",
    11: "mười một",
    14: "mười bốn",
    15: "mười lăm",
    19: "mười chín",
    20: "hai mươi",
    21: "hai mươi mốt",
    24: "hai mươi tư",
    25: "hai mươi lăm",
    31: "ba mươi mốt",
    44: "bốn mươi tư",
    45: "bốn mươi lăm",
    55: "năm mươi lăm",
    99: "chín mươi chín",
    100: "một trăm",
    101: "một trăm linh một",
    104: "một trăm linh bốn",
    105: "một trăm linh năm",
    110: "một trăm mười",
    111: "một trăm mười một",
    114: "một trăm mười bốn",
    115: "một trăm mười lăm",
    121: "một trăm hai mươi mốt",
    124: "một trăm hai mươi tư",
    200: "hai trăm",
    305: "ba trăm linh năm",
    555: "năm trăm năm mươi lăm",
    999: "chín trăm chín mươi chín",
    1000: "một nghìn",
    1001: "một nghìn không trăm linh một",
    1005: "một nghìn không trăm linh năm",
    1010: "một nghìn không trăm mười",
    1015: "một nghìn không trăm mười lăm",
    1023: "một nghìn không trăm hai mươi ba",
    1100: "một nghìn một trăm",
    1234: "một nghìn hai trăm ba mươi tư",
    2000: "hai nghìn",
    2024: "hai nghìn không trăm hai mươi tư",
    5005: "năm nghìn không trăm linh năm",
    10000: "mười nghìn",
    10500: "mười nghìn năm trăm",
    15015: "mười lăm nghìn không trăm mười lăm",
    21000: "hai mươi mốt nghìn",
    100000: "một trăm nghìn",
    101000: "một trăm linh một nghìn",
    125025: "một trăm hai mươi lăm nghìn không trăm hai mươi lăm",
    999999: "chín trăm chín mươi chín nghìn chín trăm chín mươi chín",
    1000000: "một triệu",
    1000005: "một triệu không trăm linh năm",
    2500000: "hai triệu năm trăm nghìn",
    1000000000: "một tỷ",
}


@pytest.mark.parametrize(("n", "spoken"), NUMBERS.items())
def test_numbers_read_as_a_speaker_says_them(n, spoken):
    assert read_number(n) == spoken


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (105, "một trăm lẻ năm"),
        (1005, "một ngàn không trăm lẻ năm"),
        (2024, "hai ngàn không trăm hai mươi tư"),
        (15000, "mười lăm ngàn"),
    ],
)
def test_southern_reading_settings(n, spoken):
    assert read_number(n, odd="lẻ", thousand="ngàn") == spoken


@pytest.mark.parametrize("bad", [-1, 10**12, 1.5, "12", True])
def test_numbers_out_of_range_are_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        read_number(bad)


def test_ticket_forms():
    assert read_ticket("A023") == "a, không, hai, ba"
    assert read_ticket("A023", "number") == "a hai mươi ba"
    assert read_ticket("1023") == "một, không, hai, ba"
    assert read_ticket("1023", "number") == "một nghìn không trăm hai mươi ba"
    assert read_ticket("BC105", "number") == "bê xê một trăm linh năm"
    assert read_ticket("D0", "number") == "dê không"
    assert read_ticket("W15") == "vê kép, một, năm"
    assert read_ticket("Đ21", "number") == "đê hai mươi mốt"
    assert speech.ticket_clips("A023") == ["chu_a", ",", "khong", ",", "hai", ",", "ba"]
    assert speech.ticket_clips("A023", "number") == ["chu_a", "hai", "muoi_ngang", "ba"]


@pytest.mark.parametrize("bad", ["", "A", "a023", "A-023", "ABCDE1", "A 23", "23A", "A２３"])
def test_malformed_ticket_numbers_are_refused(bad):
    with pytest.raises(ValueError, match="ticket number"):
        speech.ticket_clips(bad)


def test_every_letter_has_a_clip_and_no_two_sound_alike():
    assert set("ABCDEFGHIJKLMNOPQRSTUVWXYZĐ") == set(speech.LETTERS)
    words = [word for _, word in speech.LETTERS.values()]
    assert len(set(words)) == len(words)
    # G is "gờ": "giê" sounds like D "dê" in the Northern accent.
    assert read_ticket("G1") != read_ticket("D1")


def test_announcement_clips_and_text():
    assert announcement("A023", 5) == [
        "chime",
        "moi_cong_dan_co_so_thu_tu",
        "chu_a",
        ",",
        "khong",
        ",",
        "hai",
        ",",
        "ba",
        "den_quay_so",
        "nam",
    ]
    assert announcement("A023", 15, "number") == [
        "chime",
        "moi_cong_dan_co_so_thu_tu",
        "chu_a",
        "hai",
        "muoi_ngang",
        "ba",
        "den_quay_so",
        "muoi_huyen",
        "lam",
    ]
    assert announcement("A023", 5, chime=False)[0] == "moi_cong_dan_co_so_thu_tu"
    assert (
        announcement_text("A023", 5)
        == "Mời công dân có số thứ tự a, không, hai, ba đến quầy số năm"
    )
    assert (
        announcement_text("1023", 15, "number")
        == "Mời công dân có số thứ tự một nghìn không trăm hai mươi ba đến quầy số mười lăm"
    )
    with pytest.raises(ValueError):
        announcement("A023", -1)


def test_every_clip_the_words_use_is_in_the_pack_list():
    used = set()
    for n in [*NUMBERS, *range(0, 2100), 10**11 + 10**6 + 5]:
        used.update(speech.number_clips(n))
        used.update(speech.number_clips(n, odd="lẻ", thousand="ngàn"))
    for letter in speech.LETTERS:
        used.update(announcement(f"{letter}0123456789", 21))
    used.discard(speech.PAUSE)
    assert used == set(CLIPS), "a clip is never used, or used but not in CLIPS"


# ---------------------------------------------------------------------------------------
# Packs, with the real espeak-ng.


def need_espeak() -> None:
    if shutil.which("espeak-ng"):
        return
    message = "espeak-ng is not installed (scripts/ensure-system-packages installs it)"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; MOTCUA_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    need_espeak()
    directory = tmp_path_factory.mktemp("voice") / "vi"
    started = time.perf_counter()
    voicepack.build_pack(directory, voice="vi")
    print(f"pack built in {time.perf_counter() - started:.2f} s")
    return directory


def wav_info(data: bytes) -> tuple[wave._wave_params, array]:
    with wave.open(io.BytesIO(data), "rb") as w:
        params = w.getparams()
        samples = array("h")
        samples.frombytes(w.readframes(w.getnframes()))
    return params, samples


def rms(samples) -> float:
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if len(samples) else 0.0


def dbfs(value: float) -> float:
    return 20 * math.log10(max(value, 1e-9) / 32767)


def test_build_pack_makes_every_clip_and_a_manifest(pack):
    manifest = voicepack.load_manifest(pack)
    assert manifest["engine"] == "espeak-ng" and manifest["voice"] == "vi"
    assert manifest["rate"] == RATE and manifest["clips"] == CLIPS
    assert voicepack.check_pack(pack) == []
    for name in CLIPS:
        with wave.open(str(pack / f"{name}.wav"), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE), name
            assert 0.1 < w.getnframes() / RATE < 4, name
        samples, _ = voicepack.read_wav(pack / f"{name}.wav")
        assert dbfs(rms(samples)) > -40, f"{name} is silent"


def test_build_pack_is_idempotent_and_keeps_voices_apart(pack):
    before = {p.name: p.stat().st_mtime_ns for p in pack.glob("*.wav")}
    voicepack.build_pack(pack, voice="vi")
    assert {p.name: p.stat().st_mtime_ns for p in pack.glob("*.wav")} == before
    with pytest.raises(VoicePackError, match="vi-vn-x-south"):
        voicepack.build_pack(pack, voice="vi-vn-x-south")


def test_other_voices_build(tmp_path):
    need_espeak()
    for voice in ("vi-vn-x-central", "vi-vn-x-south"):
        voicepack.build_pack(tmp_path / voice, voice=voice)
        assert voicepack.check_pack(tmp_path / voice) == []


def test_assembled_announcement(pack, tmp_path):
    clips = announcement("A023", 5)
    started = time.perf_counter()
    first = voicepack.assemble(pack, clips, cache_dir=tmp_path)
    first_took = time.perf_counter() - started
    params, samples = wav_info(first)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, RATE)

    rate, segments, total = voicepack.plan(pack, clips)
    assert [s.name for s in segments] == [c for c in clips if c != speech.PAUSE]
    assert params.nframes == total
    # The length is the trimmed clips plus the fixed pauses, nothing else.
    clip_frames = sum(len(voicepack.prepared(pack, s.name)) for s in segments)
    pause_frames = sum(int(g * rate) for g in voicepack.gaps(clips))
    assert total == clip_frames + pause_frames
    seconds = total / rate
    assert 4 < seconds < 12, seconds
    # Trimming took each clip's own silence away.
    raw = sum(voicepack.read_wav(pack / f"{s.name}.wav")[0].__len__() for s in segments)
    assert clip_frames < raw

    # The chime comes first, then the speech; every word is audible and the levels match.
    chime = segments[0]
    assert chime.name == "chime" and chime.start == 0
    assert samples[: chime.frames] == voicepack.prepared(pack, "chime")
    levels = {}
    for s in segments:
        part = samples[s.start : s.start + s.frames]
        assert len(part) == s.frames
        levels[s.name] = voicepack.loudness(part, rate)
        assert dbfs(levels[s.name]) > -30, s.name
    speech_levels = [dbfs(v) for k, v in levels.items() if k != "chime"]
    assert max(speech_levels) - min(speech_levels) < 2.0, levels
    # Silence between the clips.
    gap = samples[segments[1].start - int(0.1 * rate) : segments[1].start]
    assert max(map(abs, gap)) == 0

    started = time.perf_counter()
    again = voicepack.assemble(pack, clips, cache_dir=tmp_path)
    cached_took = time.perf_counter() - started
    assert again == first
    assert len(list(tmp_path.glob("*.wav"))) == 1
    assert cached_took < 0.02 and cached_took < first_took
    print(f"assembly: first {first_took * 1000:.1f} ms, cached {cached_took * 1000:.2f} ms")


def test_announce_writes_the_artefact(pack):
    """test-artifacts/announcement-A023-5.wav, to listen to: checked for length and sound."""
    data = voicepack.announce(pack, "A023", 5)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "announcement-A023-5.wav").write_bytes(data)
    params, samples = wav_info(data)
    assert 4 < params.nframes / params.framerate < 12
    assert dbfs(rms(samples)) > -35
    # The number form and another counter make a different announcement.
    other = voicepack.announce(pack, "A023", 15, "number")
    assert other != data and wav_info(other)[0].nframes != params.nframes


def test_a_replaced_clip_is_picked_up(pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(pack, copy)
    clips = announcement("B7", 2)
    before = voicepack.assemble(copy, clips)
    data, rate = voicepack.read_wav(copy / "chu_b.wav")
    (copy / "chu_b.wav").write_bytes(voicepack.wav_bytes(data + data, rate))
    after = voicepack.assemble(copy, clips)
    assert after != before and len(after) > len(before)


def test_a_missing_clip_is_named(pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(pack, copy)
    (copy / "chu_q.wav").unlink()
    (copy / "tu.wav").unlink()
    with pytest.raises(VoicePackError, match=r"chu_q\.wav \(quy\).*tu\.wav \(tư\)"):
        voicepack.assemble(copy, announcement("Q024", 24, "number"))
    assert voicepack.check_pack(copy) == ["chu_q", "tu"]
    assert voicepack.main(["check", str(copy)]) == 1


def write_wav(path: Path, samples: array, rate: int, channels: int = 1, width: int = 2) -> None:
    """A WAV in another format than the generated pack's, as a recorder might make it."""
    if channels == 2:
        samples = array("h", [x for x in samples for _ in range(2)])
    raw = samples.tobytes()
    if width == 3:  # 24-bit: a zero low byte under each 16-bit sample
        raw = b"".join(b"\0" + raw[i : i + 2] for i in range(0, len(raw), 2))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def test_a_human_pack_at_another_rate_is_resampled(pack, tmp_path):
    """A human pack (no manifest) at 44.1 kHz, in stereo 24-bit, with one clip at 16 kHz: the
    announcement comes out at the rate most clips have, the odd clip resampled to it."""
    human = tmp_path / "human"
    human.mkdir()
    for name in CLIPS:
        samples, rate = voicepack.read_wav(pack / f"{name}.wav")
        if name == "ba":
            write_wav(human / "ba.wav", voicepack.resample(samples, rate, 16000), 16000)
        else:
            high = voicepack.resample(samples, rate, 44100)
            write_wav(human / f"{name}.wav", high, 44100, channels=2, width=3)
    assert voicepack.check_pack(human) == [] and voicepack.pack_rate(human) == 44100
    clips = announcement("A023", 5)
    params, samples = wav_info(voicepack.assemble(human, clips))
    assert params.framerate == 44100
    generated = wav_info(voicepack.assemble(pack, clips))[0]
    # Same words, same length give or take the resampling.
    assert params.nframes / 44100 == pytest.approx(generated.nframes / RATE, rel=0.03)
    assert dbfs(rms(samples)) > -35
    # A build never writes into someone's recordings.
    with pytest.raises(VoicePackError, match="human pack"):
        voicepack.build_pack(human)


def test_a_float_wav_is_refused_with_advice(pack, tmp_path):
    human = tmp_path / "human"
    shutil.copytree(pack, human)
    (human / "manifest.json").unlink()
    body = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, 44100, 44100 * 4, 4, 32)  # 3: IEEE float
    riff = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    riff += struct.pack("<I", len(body)) + body
    (human / "nam.wav").write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    with pytest.raises(VoicePackError, match=r"nam\.wav.*16-bit PCM"):
        voicepack.assemble(human, announcement("A1", 5))


def test_whole_sentence_engine(tmp_path):
    need_espeak()
    directory = tmp_path / "sentence"
    manifest = voicepack.build_pack(directory, engine="espeak-sentence")
    assert manifest["engine"] == "espeak-sentence"
    assert sorted(p.name for p in directory.glob("*.wav")) == ["chime.wav"]
    data = voicepack.announce(directory, "A023", 5)
    params, samples = wav_info(data)
    assert params.framerate == RATE and 4 < params.nframes / RATE < 12
    chime = voicepack.prepared(directory, "chime")
    assert samples[: len(chime)] == chime
    assert dbfs(rms(samples[len(chime) :])) > -35
    assert voicepack.announce(directory, "A023", 5) == data


def test_command_line(pack, tmp_path, capsys):
    out = tmp_path / "a.wav"
    assert voicepack.main(["say", "A023", "5", "--pack", str(pack), "--out", str(out)]) == 0
    assert "a, không, hai, ba đến quầy số năm" in capsys.readouterr().out
    assert wav_info(out.read_bytes())[0].nframes > RATE
    assert voicepack.main(["say", "A-1", "5", "--pack", str(pack), "--out", str(out)]) == 1
    assert "ticket number" in capsys.readouterr().err
    assert voicepack.main(["check", str(pack)]) == 0
