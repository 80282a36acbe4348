"""Voice packs: the clips a call announcement is made of, how the default pack is generated
with espeak-ng, and how clips are joined into one announcement.

Why clips and not a speech service: centres run on closed LANs, online text-to-speech is the
peers' most reported failure, no PyPI package ships a Vietnamese voice, and Chromium on
Linux has none. A pack is a directory of WAV files, one per phrase, letter and number word
(``CLIPS``); the default one is generated at install time with Debian's espeak-ng, and a
centre can replace it with human recordings under the same names (docs/voice.md).

Assembly (``assemble``) trims each clip's leading and trailing silence, brings every clip
to one loudness, resamples a clip recorded at another rate than the pack's, and joins them
with fixed pauses, the chime first. The result is cached on disk, keyed by the pack, the
clips' files (size and modification time) and the clip list, so a repeated call is a file
read. Pure Python: ``wave`` and ``array`` (``audioop`` is deprecated and gone in 3.13).

Command line::

    python -m display.voicepack build DIR [--voice vi] [--engine espeak-ng] [--force]
    python -m display.voicepack say A023 5 --out file.wav [--pack DIR] [--form number]
    python -m display.voicepack check DIR      # a human pack: which clips are missing
    python -m display.voicepack list           # the clips to record, with their words
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from display import speech

# Every clip of a pack, with the Vietnamese words it says. "chime" is the ding-dong before
# each announcement (synthesised here for generated packs; any short sound in a human pack).
CLIPS: dict[str, str] = {
    "chime": "(tiếng chuông: ding-dong)",
    **speech.PHRASES,
    **speech.LETTER_WORDS,
    **speech.NUMBER_WORDS,
}
# Where espeak-ng needs another spelling to say the same thing: alone, "gi" is read as a
# bare consonant; "di" is the same syllable in the Northern accent.
ESPEAK_SPELLING: dict[str, str] = {"chu_j": "di"}

VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")  # Northern, Central, Southern
ENGINES = ("espeak-ng", "espeak-sentence")
RATE = 22050  # espeak-ng's own rate: generated clips need no resampling
DEFAULT_SPEED = 150  # words a minute; espeak-ng's 175 is hurried for a hall
DEFAULT_PACK = Path(__file__).resolve().parent.parent / "instance" / "voice" / "vi"
MANIFEST = "manifest.json"
BUILDING = ".building.json"
CACHE = ".cache"
MAX_CACHE_FILES = 2000  # about a busy day of distinct announcements
# ... and at most this many bytes (an announcement is 150-500 KB: ~200 of the longest).
MAX_CACHE_BYTES = 64 * 1024 * 1024

# Pauses, in seconds: after the chime, around the sentence's phrases, at a comma (between
# the characters of a ticket read one by one), between other words, and at the end (so a
# player never clips the last word).
CHIME_GAP = 0.40
PHRASE_GAP = 0.15
COMMA_GAP = 0.22
WORD_GAP = 0.06
TAIL = 0.15
# Levels: speech clips to one loudness (RMS over their voiced parts), the chime 3 dB
# softer; no clip's peak above -1 dBFS.
SPEECH_RMS = 0.10 * 32767
CHIME_RMS = SPEECH_RMS * 0.7
PEAK = 0.89 * 32767
TRIM_DB = -35.0  # a clip's edges quieter than this, relative to its peak, are silence
ASSEMBLY_VERSION = "1"  # part of the cache key: bump when assembly changes its output


class VoicePackError(Exception):
    """A pack cannot be built or used: missing clips, unreadable files, no espeak-ng."""


# ---------------------------------------------------------------------------------------
# Samples: mono 16-bit in an array('h'), in native byte order.


def _little_endian(samples: array) -> array:
    if sys.byteorder == "big":
        samples = array(samples.typecode, samples)
        samples.byteswap()
    return samples


def read_wav(path: str | os.PathLike) -> tuple[array, int]:
    """A PCM WAV file as mono 16-bit samples and its rate. 8, 16, 24 and 32-bit integer PCM,
    mono or multi-channel (mixed down), are read; anything else is a clear error, because
    a human pack may come from any recorder."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise VoicePackError(
            f"{path}: not a PCM WAV file this player reads ({e}); save it as 16-bit PCM WAV,"
            f" e.g. `sox in.wav -b 16 {Path(path).name}`"
        ) from e
    if width == 1:
        samples = array("h", [(b - 128) << 8 for b in raw])
    elif width == 2:
        samples = array("h")
        samples.frombytes(raw)
        if sys.byteorder == "big":
            samples.byteswap()
    else:
        wide = bytearray(len(raw) // width * 2)  # keep the two most significant bytes
        wide[0::2] = raw[width - 2 :: width]
        wide[1::2] = raw[width - 1 :: width]
        samples = array("h")
        samples.frombytes(bytes(wide))
        if sys.byteorder == "big":
            samples.byteswap()
    if channels > 1:
        samples = array(
            "h",
            [sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)],
        )
    return samples, rate


def wav_bytes(samples: array, rate: int) -> bytes:
    """Mono 16-bit samples as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_little_endian(samples).tobytes())
    return out.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write by rename, so a reader (or a build that was interrupted) never sees half a
    file, and two processes caching the same announcement do not collide."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def resample(samples: array, src: int, dst: int) -> array:
    """Linear interpolation from ``src`` to ``dst`` Hz; when going down, a moving average
    first, a cheap guard against aliasing. Good enough for speech clips; packs recorded at
    one rate never need it."""
    if src == dst or not samples:
        return array("h", samples)
    if dst < src:
        width = math.ceil(src / dst)
        running, smoothed = 0, array("h", bytes(2 * len(samples)))
        for i, x in enumerate(samples):
            running += x
            if i >= width:
                running -= samples[i - width]
            smoothed[i] = running // min(i + 1, width)
        samples = smoothed
    count = max(1, round(len(samples) * dst / src))
    step, last = src / dst, len(samples) - 1
    out = array("h", bytes(2 * count))
    for i in range(count):
        pos = i * step
        j = min(int(pos), last)
        k = min(j + 1, last)
        out[i] = int(samples[j] + (samples[k] - samples[j]) * (pos - j))
    return out


def _windows(samples: array, rate: int, seconds: float) -> tuple[int, list[int]]:
    size = max(1, int(rate * seconds))
    peaks = []
    for i in range(0, len(samples), size):
        part = samples[i : i + size]
        peaks.append(max(max(part), -min(part)))
    return size, peaks


def trim(samples: array, rate: int) -> array:
    """The clip without its leading and trailing silence (anything quieter than TRIM_DB
    below its peak), keeping 10 ms before and 30 ms after the sound, with 5 ms fades so a
    cut never clicks."""
    if not samples:
        return array("h")
    size, peaks = _windows(samples, rate, 0.005)
    top = max(peaks)
    if top == 0:
        return array("h")
    threshold = top * 10 ** (TRIM_DB / 20)
    loud = [i for i, p in enumerate(peaks) if p >= threshold]
    start = max(0, loud[0] * size - int(rate * 0.010))
    end = min(len(samples), (loud[-1] + 1) * size + int(rate * 0.030))
    out = samples[start:end]
    fade = min(len(out) // 2, int(rate * 0.005))
    for i in range(fade):
        out[i] = out[i] * i // fade
        out[-1 - i] = out[-1 - i] * i // fade
    return out


def loudness(samples: array, rate: int) -> float:
    """RMS over the clip's voiced parts (20 ms windows within 30 dB of its loudest), so a
    phrase with pauses in it is not boosted above a single word."""
    size, peaks = _windows(samples, rate, 0.020)
    if not peaks or max(peaks) == 0:
        return 0.0
    threshold = max(peaks) * 10 ** (-30 / 20)
    total = count = 0
    for n, p in enumerate(peaks):
        if p >= threshold:
            part = samples[n * size : (n + 1) * size]
            total += sum(x * x for x in part)
            count += len(part)
    return math.sqrt(total / count)


def level(samples: array, rate: int, target: float) -> array:
    """The clip scaled to ``target`` loudness, never above PEAK."""
    rms = loudness(samples, rate)
    if rms == 0:
        return array("h", samples)
    peak = max(max(samples), -min(samples))
    gain = min(target / rms, PEAK / peak)
    return array("h", [int(x * gain) for x in samples])


def chime_samples(rate: int = RATE) -> array:
    """A two-note ding-dong (E5 then C5, bell-like partials, 1.1 s), made here so that no
    sound file has to be committed or licensed."""
    length = int(rate * 1.1)
    signal = [0.0] * length
    for start, freq in ((0.0, 659.25), (0.32, 523.25)):
        first = int(start * rate)
        for i in range(length - first):
            t = i / rate
            envelope = math.exp(-t / 0.35) * min(1.0, t / 0.005)
            tone = (
                math.sin(2 * math.pi * freq * t)
                + 0.30 * math.sin(2 * math.pi * 2 * freq * t)
                + 0.10 * math.sin(2 * math.pi * 3 * freq * t)
            )
            signal[first + i] += envelope * tone
    top = max(abs(x) for x in signal)
    return array("h", [int(x / top * 0.7 * 32767) for x in signal])


# ---------------------------------------------------------------------------------------
# Packs.


def load_manifest(pack_dir: str | os.PathLike) -> dict | None:
    """The pack's manifest.json, or None (a human pack need not have one)."""
    path = Path(pack_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise VoicePackError(f"{path}: unreadable manifest ({e})") from e


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise VoicePackError(
            "espeak-ng is not installed: run scripts/ensure-system-packages"
            " (or apt-get install espeak-ng)"
        )
    return path


def espeak_version() -> str:
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.split(":", 1)[-1].split("Data at")[0].strip() or "unknown"


def synthesise(text: str, voice: str = "vi", speed: int = DEFAULT_SPEED) -> array:
    """``text`` spoken by espeak-ng, as mono 16-bit samples at RATE."""
    if voice not in VOICES:
        raise VoicePackError(f"unknown voice {voice!r}: espeak-ng's Vietnamese are {VOICES}")
    with tempfile.TemporaryDirectory(prefix="motcua-espeak-") as tmp:
        out = Path(tmp) / "out.wav"
        run = subprocess.run(
            [_espeak(), "-v", voice, "-s", str(speed), "-b", "1", "-w", str(out), text],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0 or not out.exists():
            raise VoicePackError(f"espeak-ng failed on {text!r}: {run.stderr.strip()}")
        samples, rate = read_wav(out)
    return resample(samples, rate, RATE)


def build_pack(
    directory: str | os.PathLike,
    voice: str = "vi",
    engine: str = "espeak-ng",
    *,
    force: bool = False,
    speed: int = DEFAULT_SPEED,
) -> dict:
    """Generate a pack in ``directory`` and return its manifest.

    ``engine="espeak-ng"``: one WAV per clip in ``CLIPS`` (mono, 16-bit, RATE Hz), spoken by
    espeak-ng's ``voice``, and the chime. ``engine="espeak-sentence"``: only the chime;
    each announcement is then synthesised whole at call time (``announce``), for
    comparison. Idempotent: clips already there are kept unless ``force``; a directory
    holding a pack of another voice, engine or speed (or a human pack) is refused unless
    ``force``, so a build never mixes voices.
    """
    if engine not in ENGINES:
        raise VoicePackError(f"unknown engine {engine!r}: one of {ENGINES}")
    if voice not in VOICES:
        raise VoicePackError(f"unknown voice {voice!r}: espeak-ng's Vietnamese are {VOICES}")
    _espeak()  # fail before touching the directory
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {"engine": engine, "voice": voice, "speed": speed, "rate": RATE}
    old = load_manifest(directory)
    marker = directory / BUILDING
    if old is None and marker.exists():  # an interrupted build of ours: resume it
        with contextlib.suppress(OSError, ValueError):
            old = json.loads(marker.read_text(encoding="utf-8"))
    if not force:
        if old is None and any(directory.glob("*.wav")):
            raise VoicePackError(
                f"{directory} holds clips but no manifest (a human pack?): not overwriting;"
                " use force=True (--force) or another directory"
            )
        if old is not None and any(old.get(k) != v for k, v in wanted.items()):
            was = {k: old.get(k) for k in wanted}
            raise VoicePackError(
                f"{directory} holds a pack made with {was}, not {wanted}: use force=True"
                " (--force) or another directory"
            )
    names = list(CLIPS) if engine == "espeak-ng" else ["chime"]
    manifest = {
        "format": 1,
        **wanted,
        "sample_width": 2,
        "channels": 1,
        "espeak_ng": espeak_version(),
        "clips": {name: CLIPS[name] for name in names},
    }
    # The manifest is written last (make's target: a failed build is retried); until then a
    # marker says whose clips these are, so an interrupted build is resumed, not refused.
    _write_atomic(marker, _json(wanted))
    todo = [n for n in names if force or not (directory / f"{n}.wav").exists()]

    def make(name: str) -> None:
        if name == "chime":
            samples = chime_samples(RATE)
        else:
            samples = synthesise(ESPEAK_SPELLING.get(name, CLIPS[name]), voice, speed)
        _write_atomic(directory / f"{name}.wav", wav_bytes(samples, RATE))

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as ex:
        for future in [ex.submit(make, n) for n in todo]:
            future.result()
    _write_atomic(directory / MANIFEST, _json(manifest))
    marker.unlink()
    return manifest


def _json(data: dict) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def check_pack(pack_dir: str | os.PathLike, names: list[str] | None = None) -> list[str]:
    """The clips of ``names`` (default: all of ``CLIPS``) that the pack lacks."""
    pack = Path(pack_dir)
    return [n for n in names or CLIPS if n != speech.PAUSE and not (pack / f"{n}.wav").exists()]


def _missing_error(pack: Path, missing: list[str]) -> VoicePackError:
    listed = ", ".join(f"{n}.wav ({CLIPS.get(n, 'no such clip in CLIPS')})" for n in missing)
    return VoicePackError(f"voice pack {pack} is missing clip(s): {listed}")


_rates: dict[tuple, int] = {}


def pack_rate(pack_dir: str | os.PathLike) -> int:
    """The rate announcements from this pack are made at: the manifest's ``rate``, else the
    rate most of the pack's clips have. Clips at another rate are resampled to it."""
    pack = Path(pack_dir)
    manifest = load_manifest(pack)
    if manifest and isinstance(manifest.get("rate"), int):
        return manifest["rate"]
    key = (str(pack.resolve()), pack.stat().st_mtime_ns)
    if key not in _rates:
        rates: Counter[int] = Counter()
        for path in pack.glob("*.wav"):
            try:
                with wave.open(str(path), "rb") as w:
                    rates[w.getframerate()] += 1
            except (wave.Error, EOFError):
                continue
        _rates[key] = rates.most_common(1)[0][0] if rates else RATE
    return _rates[key]


_prepared: dict[tuple, array] = {}


def prepared(pack_dir: str | os.PathLike, name: str, rate: int | None = None) -> array:
    """One clip as it goes into an announcement: mono 16-bit at ``rate`` (the pack's rate by
    default), trimmed and levelled. Kept in memory per file version, so building a new
    announcement from known clips costs only the join."""
    pack = Path(pack_dir)
    rate = rate or pack_rate(pack)
    path = pack / f"{name}.wav"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _missing_error(pack, [name]) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, rate)
    if key not in _prepared:
        samples, own_rate = read_wav(path)
        samples = trim(resample(samples, own_rate, rate), rate)
        if not samples:
            raise VoicePackError(f"{path}: the clip is silent")
        target = CHIME_RMS if name == "chime" else SPEECH_RMS
        if len(_prepared) > 1000:
            _prepared.clear()
        _prepared[key] = level(samples, rate, target)
    return _prepared[key]


def gaps(clip_names: list[str]) -> list[float]:
    """The pause, in seconds, after each clip of ``clip_names`` (a ``speech.PAUSE`` entry is
    itself a pause, and the pause after the last clip is the tail)."""
    out = []
    for i, name in enumerate(clip_names):
        after = clip_names[i + 1] if i + 1 < len(clip_names) else None
        if name == speech.PAUSE:
            out.append(COMMA_GAP)
        elif after is None:
            out.append(TAIL)
        elif after == speech.PAUSE:
            out.append(0.0)
        elif name == "chime":
            out.append(CHIME_GAP)
        elif name in speech.PHRASES or after in speech.PHRASES:
            out.append(PHRASE_GAP)
        else:
            out.append(WORD_GAP)
    return out


@dataclass(frozen=True)
class Segment:
    """Where one clip sits in an assembled announcement, in frames at the pack's rate."""

    name: str
    start: int
    frames: int


def plan(pack_dir: str | os.PathLike, clip_names: list[str]) -> tuple[int, list[Segment], int]:
    """The layout ``assemble`` produces: (rate, segments, total frames). Raises naming every
    missing clip at once, so a centre completing a human pack sees the whole list."""
    pack = Path(pack_dir)
    missing = check_pack(pack, clip_names)
    if missing:
        raise _missing_error(pack, missing)
    rate = pack_rate(pack)
    segments, at = [], 0
    for name, gap in zip(clip_names, gaps(clip_names), strict=True):
        if name != speech.PAUSE:
            frames = len(prepared(pack, name, rate))
            segments.append(Segment(name, at, frames))
            at += frames
        at += int(gap * rate)
    return rate, segments, at


def _cache_key(pack: Path, parts: list) -> str:
    blob = json.dumps([ASSEMBLY_VERSION, str(pack.resolve()), parts], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _cached(cache_dir: Path, key: str, make) -> bytes:
    path = cache_dir / f"{key}.wav"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = make()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        _prune(cache_dir)
    except OSError:
        pass  # a read-only pack still plays; it is only not cached
    return data


def _prune(cache_dir: Path) -> None:
    """Keep the cache to MAX_CACHE_FILES and MAX_CACHE_BYTES: when either is passed, drop
    the oldest files until it is back to three quarters of both."""
    files = []
    for path in cache_dir.glob("*.wav"):
        with contextlib.suppress(OSError):
            st = path.stat()
            files.append((st.st_mtime_ns, st.st_size, path))
    total = sum(size for _, size, _ in files)
    if len(files) <= MAX_CACHE_FILES and total <= MAX_CACHE_BYTES:
        return
    files.sort()
    count = len(files)
    for _, size, path in files:
        if count <= MAX_CACHE_FILES * 3 // 4 and total <= MAX_CACHE_BYTES * 3 // 4:
            break
        with contextlib.suppress(OSError):
            path.unlink()
        count -= 1
        total -= size


def assemble(
    pack_dir: str | os.PathLike,
    clip_names: list[str],
    *,
    cache_dir: str | os.PathLike | None = None,
) -> bytes:
    """Join the pack's clips ``clip_names`` (as from ``speech.announcement``, the chime
    first) into one mono 16-bit WAV at the pack's rate, with ``gaps`` between them.

    Cached in ``cache_dir`` (default: the pack's ``.cache``) by the pack, each clip file's
    size and modification time, and the clip list: a repeated call reads one file, and a
    clip replaced in the pack is picked up. A missing clip raises ``VoicePackError``
    naming it.
    """
    pack = Path(pack_dir)
    parts = []
    for name in clip_names:
        if name == speech.PAUSE:
            parts.append(name)
            continue
        try:
            st = (pack / f"{name}.wav").stat()
        except FileNotFoundError:
            raise _missing_error(pack, check_pack(pack, clip_names)) from None
        parts.append([name, st.st_size, st.st_mtime_ns])
    manifest = pack / MANIFEST
    parts.append(manifest.stat().st_mtime_ns if manifest.exists() else None)

    def make() -> bytes:
        rate, segments, total = plan(pack, clip_names)
        out = array("h", bytes(2 * total))
        for seg in segments:
            out[seg.start : seg.start + seg.frames] = prepared(pack, seg.name, rate)
        return wav_bytes(out, rate)

    return _cached(Path(cache_dir) if cache_dir else pack / CACHE, _cache_key(pack, parts), make)


def announce(
    pack_dir: str | os.PathLike,
    number: str,
    counter: int,
    form: speech.Form = "digits",
    *,
    cache_dir: str | os.PathLike | None = None,
    **reading: str,
) -> bytes:
    """The WAV announcing ticket ``number`` at ``counter``: what the board plays.

    A clip pack (generated or human) is assembled from its clips; an ``espeak-sentence``
    pack has espeak-ng speak the whole sentence (``speech.announcement_text``) after the
    chime. Both are cached the same way.
    """
    pack = Path(pack_dir)
    manifest = load_manifest(pack) or {}
    if manifest.get("engine") != "espeak-sentence":
        return assemble(
            pack, speech.announcement(number, counter, form, **reading), cache_dir=cache_dir
        )
    sentence = speech.announcement_text(number, counter, form, **reading)
    voice, speed = manifest.get("voice", "vi"), manifest.get("speed", DEFAULT_SPEED)
    chime = pack / "chime.wav"
    if not chime.exists():
        raise _missing_error(pack, ["chime"])
    st = chime.stat()
    parts = ["espeak-sentence", voice, speed, sentence, st.st_size, st.st_mtime_ns]

    def make() -> bytes:
        ding = prepared(pack, "chime", RATE)
        spoken = level(trim(synthesise(sentence, voice, speed), RATE), RATE, SPEECH_RMS)
        out = ding + array("h", bytes(2 * int(CHIME_GAP * RATE))) + spoken
        return wav_bytes(out + array("h", bytes(2 * int(TAIL * RATE))), RATE)

    return _cached(Path(cache_dir) if cache_dir else pack / CACHE, _cache_key(pack, parts), make)


# ---------------------------------------------------------------------------------------
# Command line.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m display.voicepack", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate a pack with espeak-ng (idempotent)")
    b.add_argument("directory", type=Path)
    b.add_argument("--voice", default="vi", choices=VOICES)
    b.add_argument("--engine", default="espeak-ng", choices=ENGINES)
    b.add_argument("--speed", type=int, default=DEFAULT_SPEED, help="words a minute")
    b.add_argument("--force", action="store_true", help="regenerate every clip")
    s = sub.add_parser("say", help="render one announcement to a WAV file")
    s.add_argument("number", help='ticket number, e.g. "A023"')
    s.add_argument("counter", type=int)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    s.add_argument("--form", choices=speech.FORMS, default="digits")
    s.add_argument("--odd", choices=("linh", "lẻ"), default="linh")
    s.add_argument("--thousand", choices=("nghìn", "ngàn"), default="nghìn")
    c = sub.add_parser("check", help="list the clips a pack lacks (exit 1 if any)")
    c.add_argument("directory", type=Path)
    sub.add_parser("list", help="print every clip name with its words")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            m = build_pack(
                args.directory, args.voice, args.engine, force=args.force, speed=args.speed
            )
            print(f"{args.directory}: {len(m['clips'])} clips, {m['engine']} voice {m['voice']}")
        elif args.command == "say":
            reading = {"odd": args.odd, "thousand": args.thousand}
            data = announce(args.pack, args.number, args.counter, args.form, **reading)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(data)
            text = speech.announcement_text(args.number, args.counter, args.form, **reading)
            print(f"{args.out}: {text}")
        elif args.command == "check":
            missing = check_pack(args.directory)
            for name in missing:
                print(f"missing {name}.wav: {CLIPS[name]}")
            if not missing:
                rate = pack_rate(args.directory)
                print(f"{args.directory}: all {len(CLIPS)} clips present, rate {rate} Hz")
            return 1 if missing else 0
        else:
            for name, words in CLIPS.items():
                print(f"{name}\t{words}")
    except (VoicePackError, ValueError) as e:
        print(f"voicepack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
