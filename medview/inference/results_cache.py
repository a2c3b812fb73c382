"""In-memory LRU of Predictions per series and model version. No Qt, no torch."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from medview.inference.package import ModelPackage
from medview.inference.prediction import Prediction
from medview.io.volume import Volume


class ResultsCache:
    """In-memory LRU of Predictions keyed by series UID (or source path) + model id/version/sha
    + options. Volumes without a series UID or source path are not cached."""

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: "OrderedDict[tuple, Prediction]" = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(volume: Volume, package: ModelPackage, **options: Any) -> tuple | None:
        series = volume.meta.get("SeriesInstanceUID") or volume.meta.get("source_path")
        if not series:
            return None
        return (str(series), volume.shape, package.id, package.version, package.sha256,
                tuple(sorted((k, str(v)) for k, v in options.items())))

    def get(self, key: tuple | None) -> Prediction | None:
        if key is None:
            return None
        with self._lock:
            p = self._items.get(key)
            if p is not None:
                self._items.move_to_end(key)
            return p

    def put(self, key: tuple | None, prediction: Prediction) -> None:
        if key is None:
            return
        with self._lock:
            self._items[key] = prediction
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


DEFAULT_CACHE = ResultsCache()
