"""Print the median f0 of every offline voice, to refresh the constants in kokoro.py, piper.py and espeak.py.

python -m serve_apps.tts.measure
"""

from __future__ import annotations

from octavia.models.store import ModelStore
from serve_apps.tts.espeak import EspeakEngine
from serve_apps.tts.kokoro import KokoroEngine
from serve_apps.tts.piper import PiperEngine
from serve_apps.tts.voices import measure_voice


def main() -> None:
    store = ModelStore()
    engines = (
        KokoroEngine(store.resolve("kokoro-82m-int8")),
        PiperEngine(store.resolve("piper-en_US-joe-medium")),
        EspeakEngine(),
    )
    for engine in engines:
        for voice in engine.voices("en"):
            stats = measure_voice(engine, voice.id)
            print(
                f"{engine.name:10} {voice.id:18} {voice.gender:7} median {stats.median_hz} Hz "
                f"(p10 {stats.low_hz}, p90 {stats.high_hz}, voiced {stats.voiced_seconds} s)"
            )


if __name__ == "__main__":
    main()
