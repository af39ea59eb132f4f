"""The near-duplicate band join's answer is kept in the scan's cache: an unchanged image set
does not join again, a changed one does, and the outputs equal a cold scan's either way."""

from __future__ import annotations

import numpy as np
from PIL import Image

from test_cache import Rescans, _images

from datasan.sources.images import neardup


def test_the_band_join_runs_again_only_when_its_inputs_change(tmp_path, monkeypatch):
    calls = []
    real = neardup.near_partners

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(neardup, "near_partners", counted)
    data = tmp_path / "imgs"
    _images(data)
    rs = Rescans(tmp_path, data, shard_images=4)
    rs.scan()  # each scan: an uncached one, then one through the cache (outputs compared)
    assert len(calls) == 2
    rs.scan()
    assert len(calls) == 3  # the uncached scan's; the warm one took the cached answer
    Image.fromarray(np.zeros((24, 24, 3), np.uint8) + 90).save(data / "cat" / "001.png")
    rs.scan()
    assert len(calls) == 5  # changed pixels, changed hashes: joined again
    rs.scan(thresholds={"near_duplicate_bits": 2})
    assert len(calls) == 7  # another distance: joined again
