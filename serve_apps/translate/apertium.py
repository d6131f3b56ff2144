"""Apertium rule-based translation (offline profile), through the `apertium` command.

A batch goes through ONE apertium process per hop. Each segment is wrapped in its own `<p id="sN">` block and the
batch is translated as HTML: Apertium treats block tags as sentence boundaries, so words never move between
segments (in plain-text mode a newline is just a blank, and "big\\nhouse" comes back as "Casa\\ngrande"). The ids
are read back and checked, so a broken alignment raises instead of shifting translations onto other segments.

Pairs without a direct mode pivot through Spanish, Apertium's hub language (en->pt = en->es->pt).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess

from octavia.errors import MissingDependencyError, ModelError
from octavia.models.catalog import APERTIUM_MODES
from octavia.models.store import ModelStore
from octavia.records import Translation, TranslationRequest
from serve_apps.translate.engine import TranslationEngine, to_translations

PIVOT = "es"
_BLOCK = re.compile(r'<p id="s(\d+)">(.*?)</p>', re.DOTALL)
_SPACES = re.compile(r"[ \t]+")
# Not before ! ? : ; which French spaces off.
_SPACE_BEFORE_STOP = re.compile(r"(?<=\S) +(?=[.,](?:\s|$))")


def _tidy(text: str) -> str:
    """Apertium leaves doubled spaces where it drops words, a space before a block's first word, and at times one
    before a full stop ("es mi profesora .")."""
    lines = (_SPACE_BEFORE_STOP.sub("", _SPACES.sub(" ", line)).strip() for line in text.split("\n"))
    return "\n".join(lines).strip()


class ApertiumEngine(TranslationEngine):
    name = "apertium"

    def __init__(self, *, store: ModelStore | None = None, executable: str = "apertium", timeout: float = 600.0):
        found = shutil.which(executable)
        if found is None:
            raise MissingDependencyError(f"{executable!r} is not on PATH; install it with: apt-get install -y apertium")
        store = store or ModelStore()
        self._apertium = found
        self._timeout = timeout
        # Installed modes, as the model store sees them (each mode file is a catalogue entry).
        self._modes = {
            pair: mode for pair, (mode, _) in APERTIUM_MODES.items() if store.status(f"apertium-{pair[0]}-{pair[1]}").ok
        }

    def _route(self, source: str, target: str) -> list[str] | None:
        if (source, target) in self._modes:
            return [self._modes[(source, target)]]
        first, second = self._modes.get((source, PIVOT)), self._modes.get((PIVOT, target))
        if source != target and first and second:
            return [first, second]
        return None

    def pairs(self) -> tuple[tuple[str, str], ...]:
        languages = {lang for pair in self._modes for lang in pair}
        return tuple(
            (s, t) for s in sorted(languages) for t in sorted(languages) if s != t and self._route(s, t) is not None
        )

    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        self.check_pair(source, target)
        route = self._route(source, target)
        assert route is not None
        texts = [r.text for r in batch]
        for mode in route:
            texts = self._run(mode, texts)
        return to_translations(batch, source, target, texts)

    def _run(self, mode: str, texts: list[str]) -> list[str]:
        """Translate with one apertium process; blank texts stay blank without being sent."""
        todo = [i for i, t in enumerate(texts) if t.strip()]
        if not todo:
            return ["" for _ in texts]
        document = "".join(f'<p id="s{i}">{html.escape(texts[i], quote=False)}</p>\n' for i in todo)
        try:
            done = subprocess.run(
                [self._apertium, "-f", "html", "-u", mode],
                input=document,
                capture_output=True,
                text=True,
                timeout=self._timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"apertium {mode} took longer than {self._timeout:.0f} s on {len(todo)} segments") from exc
        if done.returncode != 0:
            raise ModelError(f"apertium {mode} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        blocks = _BLOCK.findall(done.stdout)
        if [int(i) for i, _ in blocks] != todo:
            raise ModelError(
                f"apertium {mode} returned {len(blocks)} segments for {len(todo)}: the segment markers did not "
                "survive, refusing to guess the alignment",
                details={"mode": mode, "sent": todo, "received": [int(i) for i, _ in blocks]},
            )
        out = ["" for _ in texts]
        for i, text in blocks:
            out[int(i)] = _tidy(html.unescape(text))
        return out
