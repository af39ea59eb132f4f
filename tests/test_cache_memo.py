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


def test_a_few_changed_images_are_decoded_without_starting_the_pool(tmp_path, monkeypatch):
    from test_cache import _scan, assert_same_outputs

    from datasan.engine import LocalEngine

    data = tmp_path / "imgs"
    _images(data)
    opts = {"workers": 2, "shard_images": 4}
    _scan(data, tmp_path / "cold", tmp_path / "cache", **opts)
    Image.fromarray(np.zeros((24, 24, 3), np.uint8) + 90).save(data / "cat" / "001.png")
    pools = []
    real = LocalEngine._executor

    def counted(self):
        pools.append(1)
        return real(self)

    monkeypatch.setattr(LocalEngine, "_executor", counted)
    warm = _scan(data, tmp_path / "warm", tmp_path / "cache", **opts)
    assert (warm.summary.cache["hits"], warm.summary.cache["misses"]) == (12, 1) and pools == []
    monkeypatch.setattr(LocalEngine, "_executor", real)
    _scan(data, tmp_path / "uncached", None, **opts)
    assert_same_outputs(tmp_path / "uncached", tmp_path / "warm")
