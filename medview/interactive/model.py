"""Run an interactive segmentation network on one 2D image: prompts in, mask out.

``Segmenter.predict`` is what the app's AI assist tool, the benchmark and training validation
call, so all three measure the same thing. The network sees a square view (RITM zoom-in): the
whole image for the very first click, then the square around the current mask and prompts.
Torch is imported lazily; no Qt.
"""

from __future__ import annotations

import numpy as np

from medview.interactive import guidance as g
from medview.interactive.guidance import Prompts  # noqa: F401  (here since the first release)


class Segmenter:
    """A loaded interactive network (6 input channels: image x3, positive, negative, previous)."""

    def __init__(self, net, size: int = g.SIZE, version: str = "", model_id: str = "", threshold: float = 0.5):
        self.net = net
        self.size = size
        self.version = version
        self.model_id = model_id
        self.threshold = threshold
        self.last_confidence = 0.0
        self.tta = True  # mirror averaging on prompted images (propagation passes tta=False)

    package = None  # the model package it was loaded from (None: built in code)
    dims = 2

    @classmethod
    def from_package(cls, package):
        """The package's segmenter: this class for a 2D package, ``model3d.Segmenter3D`` for a 3D one."""
        from medview.inference.package import load_network

        if package.dims == 3:
            from medview.interactive.model3d import Segmenter3D

            return Segmenter3D.from_package(package)
        net = load_network(package)
        net.eval()
        size = int((package.input.get("size") or [g.SIZE])[0])
        seg = cls(net, size, package.version, package.id, float(package.output.get("threshold", 0.5)))
        seg.package = package
        return seg

    # -----------------------------------------------------------------------------------------
    def probabilities(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, 6, S, S) network inputs -> (N, S, S) foreground probabilities; ``tta``: the mean
        with the left-right mirror (chosen on the polyp validation images: NoC@90 2.60 vs 2.90
        without; four flips gave 2.86)."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            if tta:
                x = torch.cat([x, x.flip(-1)])
            p = torch.softmax(self.net(x), 1)[:, 1]
            if tta:
                n = batch.shape[0]
                p = (p[:n] + p[n:].flip(-1)) / 2
            return p.numpy()

    def _run_view(self, image_norm, view, prompts: Prompts, prev: np.ndarray, tta: bool) -> tuple[np.ndarray, tuple]:
        x = g.network_input(image_norm, view, prompts.clicks, prev, prompts.pos_strokes, prompts.neg_strokes,
                            self.size)
        prob = self.probabilities(x[None], tta)[0]
        return g.paste_view(prob, view, image_norm.shape[1:])

    def predict(self, image_norm: np.ndarray, prompts: Prompts, prev_mask: np.ndarray | None = None,
                tta: bool | None = None) -> np.ndarray:
        """The object's new boolean mask. ``image_norm`` from ``guidance.normalise_image``;
        ``prev_mask`` the object's current mask (kept outside the view the network looks at);
        ``tta`` (default ``self.tta``) averages with the mirrored input."""
        tta = self.tta if tta is None else tta
        shape = image_norm.shape[1:]
        prev = np.zeros(shape, bool) if prev_mask is None else prev_mask.astype(bool)
        if not prompts.has_positive() and not prev.any():
            return prev.copy()
        pts = np.array(prompts.points(), dtype=float).reshape(-1, 2)
        box = prompts.box
        if box is not None:
            view = g.focus_view(shape, pts, expand=1.3)
            prompts = Prompts(prompts.clicks + [g.Click((prompts.box[0] + prompts.box[2]) / 2,
                                                        (prompts.box[1] + prompts.box[3]) / 2, True)],
                              None, prompts.pos_strokes, prompts.neg_strokes)
        elif not prev.any():
            # first interaction: look at the whole image, then zoom on what was found
            vals, sl = self._run_view(image_norm, g.whole_view(shape), prompts, prev, tta)
            first = np.zeros(shape, bool)
            first[sl] = vals >= self.threshold
            first = self._keep_prompted(first, prompts)
            if first.any():
                prev = first
                view = g.focus_view(shape, np.concatenate([np.argwhere(first), pts]))
            else:
                return first
        else:
            view = g.focus_view(shape, np.concatenate([np.argwhere(prev), pts]))
        vals, sl = self._run_view(image_norm, view, prompts, prev, tta)
        out = prev.copy()
        out[sl] = vals >= self.threshold
        inside = vals[vals >= self.threshold]
        # mean foreground probability of the result: low where the network is unsure (the
        # propagation uses it to find the object's end)
        self.last_confidence = float(inside.mean()) if inside.size else 0.0
        self._honour_clicks(out, prompts)
        if box is not None:  # a box says the object lies inside it
            inside = np.zeros(shape, bool)
            inside[max(0, int(box[0])):int(np.ceil(box[2])) + 1, max(0, int(box[1])):int(np.ceil(box[3])) + 1] = True
            out &= inside
        return self._keep_prompted(out, prompts)

    @staticmethod
    def _honour_clicks(mask: np.ndarray, prompts: Prompts) -> None:
        """Every click has an effect: a small disc under a positive click is in the object,
        under a negative one it is out (the network may disagree near a faint boundary)."""
        h, w = mask.shape
        r = max(1.0, 0.006 * max(h, w))
        for k in prompts.clicks:
            r0, r1 = int(max(0, np.floor(k.row - r))), int(min(h, np.ceil(k.row + r) + 1))
            c0, c1 = int(max(0, np.floor(k.col - r))), int(min(w, np.ceil(k.col + r) + 1))
            yy, xx = np.ogrid[r0:r1, c0:c1]
            disc = (yy - k.row) ** 2 + (xx - k.col) ** 2 <= r * r
            sub = mask[r0:r1, c0:c1]
            sub[disc] = k.positive
        if prompts.neg_strokes is not None:
            mask &= ~prompts.neg_strokes
        if prompts.pos_strokes is not None:
            mask |= prompts.pos_strokes

    @staticmethod
    def _keep_prompted(mask: np.ndarray, prompts: Prompts) -> np.ndarray:
        """Only the connected parts a positive prompt touches (a stray blob elsewhere is not the
        object the user pointed at); unchanged when no part is touched."""
        return g.keep_prompted(mask, [g.Point((k.row, k.col), k.positive) for k in prompts.clicks],
                               prompts.pos_strokes)
