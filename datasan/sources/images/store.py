"""Compact, columnar storage of the per-image records of one dataset.

The main process keeps a few facts per image until the set is finished
(size, mode, content hash, pixel sums).  As Python objects they cost about
900 bytes an image; packed into typed arrays they cost about 180 (the
sample id string is most of it), so a million images stay well under a
gigabyte.  Float images' moments (rare) stay as objects.
"""

from __future__ import annotations

from array import array

from datasan.sources.images.pixels import PixelSums

DIGEST = 16


class RecordStore:
    """Columns of :class:`~datasan.sources.images.decode.ImageRecord` fields, one row per image."""

    def __init__(self) -> None:
        self.samples: list[str] = []
        self.ok = array("b")
        self.width = array("q")
        self.height = array("q")
        self.nbytes = array("q")
        self._names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}
        self.mode = array("H")
        self.format = array("H")
        self.form = array("H")
        self.digests = bytearray()
        self.scale = array("q")  # 0: no integer pixel sums
        self.n = array("q")
        self.s = array("q")  # 3 per image (a one-channel form uses the first)
        self.q = array("q")
        self.fmoments: dict[int, list] = {}
        # perceptual facts: 16 bytes of hashes (the near-duplicate index) + 12 of scores
        self.perceived = array("b")
        self.phash = array("Q")
        self.dhash = array("Q")
        self.blur = array("f")
        self.luma = array("B")  # p5, p50, p95 per image
        self.entropy = array("f")

    def __len__(self) -> int:
        return len(self.samples)

    def _code(self, name: str) -> int:
        c = self._codes.get(name)
        if c is None:
            c = self._codes[name] = len(self._names)
            self._names.append(name)
        return c

    def add(self, rec) -> None:
        """Append one ImageRecord (its findings are not stored here)."""
        i = len(self.samples)
        self.samples.append(rec.sample)
        self.ok.append(1 if rec.ok else 0)
        self.width.append(rec.width)
        self.height.append(rec.height)
        self.nbytes.append(rec.bytes)
        self.mode.append(self._code(rec.mode))
        self.format.append(self._code(rec.format))
        self.form.append(self._code(rec.form))
        self.digests += (rec.digest or b"").ljust(DIGEST, b"\0")[:DIGEST]
        sums = rec.sums  # what set_pixels would set, appended at once (a warm scan adds every image)
        if sums is not None:
            self.scale.append(sums.scale)
            self.n.append(sums.n)
            self.s.extend((list(sums.s) + [0, 0, 0])[:3])
            self.q.extend((list(sums.q) + [0, 0, 0])[:3])
        else:
            self.scale.append(0)
            self.n.append(0)
            self.s.extend((0, 0, 0))
            self.q.extend((0, 0, 0))
        if rec.fmoments is not None:
            self.fmoments[i] = rec.fmoments
        p = rec.perceptual
        self.perceived.append(1 if p is not None else 0)
        self.phash.append(p.phash if p else 0)
        self.dhash.append(p.dhash if p else 0)
        self.blur.append(p.blur if p else 0.0)
        self.luma.extend((p.p5, p.p50, p.p95) if p else (0, 0, 0))
        self.entropy.append(p.entropy if p else 0.0)

    def set_pixels(self, i: int, form: str, sums: PixelSums | None, fmoments: list | None) -> None:
        """Replace image ``i``'s pixel measurements (and the form they are in)."""
        self.form[i] = self._code(form)
        if sums is not None:
            self.scale[i], self.n[i] = sums.scale, sums.n
            for c in range(3):
                self.s[3 * i + c] = sums.s[c] if c < len(sums.s) else 0
                self.q[3 * i + c] = sums.q[c] if c < len(sums.q) else 0
        else:
            self.scale[i] = 0
        if fmoments is not None:
            self.fmoments[i] = fmoments
        else:
            self.fmoments.pop(i, None)

    def name(self, column: array, i: int) -> str:
        """The string behind a coded column (mode, format, form) at row ``i``."""
        return self._names[column[i]]

    def digest(self, i: int) -> bytes:
        return bytes(self.digests[DIGEST * i:DIGEST * (i + 1)])

    def channels_of_form(self, i: int) -> int:
        return 1 if self.name(self.form, i) == "L" else 3

    def sums(self, i: int) -> PixelSums | None:
        """Image ``i``'s integer pixel sums, or None (float image, or not measured)."""
        if not self.scale[i]:
            return None
        k = self.channels_of_form(i)
        return PixelSums(self.scale[i], self.n[i], list(self.s[3 * i:3 * i + k]), list(self.q[3 * i:3 * i + k]))

    def measured(self, i: int) -> bool:
        return bool(self.scale[i]) or i in self.fmoments
