"""eSpeak NG through its command line: robotic but always there, in every language it knows."""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import cached_property

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import MissingDependencyError, UnsupportedLanguageError
from octavia.records import Gender, Voice
from serve_apps.tts.engine import TtsEngine, check_speed, check_text, pick_language, unknown_voice

DEFAULT_WORDS_PER_MINUTE = 175  # espeak-ng's own default rate

# The voices we offer in every language: id -> (espeak variant, pitch 0-99 where 50 is the variant's own, gender,
# median f0). espeak's male variants all sit at 85-107 Hz, so two are raised with -p to cover higher male voices.
# Median f0 measured once with `python -m serve_apps.tts.measure` (pYIN over the voiced frames of
# voices.MEASURE_TEXT in en-us at speed 1.0); a variant's pitch is the same in every language.
VOICES: dict[str, tuple[str, int, Gender, float]] = {
    "m8": ("m8", 50, "male", 85.8),
    "m3": ("m3", 50, "male", 105.7),
    "m3-p70": ("m3", 70, "male", 127.9),
    "f1": ("f1", 50, "female", 179.8),
    "f3": ("f3", 50, "female", 210.1),
    "f5-p70": ("f5", 70, "female", 252.8),
}

# Where a language has several espeak voices, the one an ISO 639-1 code means.
_PREFERRED = {"en": "en-us", "fr": "fr-fr", "pt": "pt-br", "zh": "cmn", "vi": "vi"}


class EspeakEngine(TtsEngine):
    name = "espeak-ng"

    def __init__(self, executable: str = "espeak-ng") -> None:
        path = shutil.which(executable)
        if path is None:
            raise MissingDependencyError(
                f"{executable!r} is not on PATH. Install it with: apt-get install -y espeak-ng",
                details={"executable": executable},
            )
        self._executable = path

    @cached_property
    def _languages(self) -> dict[str, str]:
        """ISO 639-1 code (and espeak's regional tags) -> espeak voice name."""
        from octavia.languages import normalize

        listing = subprocess.run([self._executable, "--voices"], check=True, capture_output=True, text=True).stdout
        tags = sorted({line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1})
        table: dict[str, str] = {tag: tag for tag in tags if "-" in tag}
        for code, tag in _PREFERRED.items():
            if tag in tags:
                table[code] = tag
        for tag in tags:
            base = tag.split("-")[0]
            if len(base) != 2 or base in table:
                continue
            try:
                if normalize(base) == base:
                    table[base] = base if base in tags else tag
            except UnsupportedLanguageError:
                continue  # espeak knows some constructed or private-use codes that are no ISO 639-1 language
        return table

    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(k for k in self._languages if "-" not in k))

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        languages = (pick_language(self.name, language, self._languages)[0],) if language else self.languages()
        return tuple(
            Voice(id=voice_id, engine=self.name, languages=languages, gender=gender, median_f0_hz=f0)
            for voice_id, (_, _, gender, f0) in VOICES.items()
        )

    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """`reference` is ignored: espeak voices are fixed formant settings."""
        import soundfile

        text = check_text(text)
        _, espeak_voice = pick_language(self.name, language, self._languages)
        if voice not in VOICES:
            raise unknown_voice(self.name, voice, VOICES)
        variant, pitch, _, _ = VOICES[voice]
        words_per_minute = round(DEFAULT_WORDS_PER_MINUTE * check_speed(speed))
        command = [self._executable, "-v", f"{espeak_voice}+{variant}", "-p", str(pitch), "-s", str(words_per_minute)]
        result = subprocess.run(
            [*command, "--stdout"],
            input=text.encode(),  # on stdin so that text starting with "-" is never read as an option
            check=True,
            capture_output=True,
        )
        samples, sample_rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
        if samples.size == 0 or not np.any(samples):
            raise ValueError(f"text {text!r} has nothing to speak")
        return AudioClip(np.ascontiguousarray(samples), int(sample_rate))
