"""Drawing detections on pictures: a box and a "name score" label per detection, one colour per class.

Works on uint8 RGB numpy arrays with OpenCV (fast enough for video); label text is black or white,
whichever contrasts more with the class colour.
"""
from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np

__all__ = ["class_colors", "text_color_for", "draw_detections"]


def class_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """``num_classes`` distinct, saturated RGB colours (0..255), stable for a given count.

    Hues are spread evenly (as keras-yolo3 did) and then interleaved, so neighbouring class ids
    get clearly different colours.

    Args:
        num_classes: how many colours (at least 1 is made).

    Returns:
        ``(r, g, b)`` tuples, 0..255, one a class id.
    """
    n = max(int(num_classes), 1)
    colors = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb(i / n, 1.0, 1.0)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    order = np.random.RandomState(10101).permutation(n)  # same shuffle for every run
    return [colors[k] for k in order]


def text_color_for(background: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on the RGB ``background`` (WCAG relative luminance).

    Args:
        background: an (r, g, b) colour, 0..255 (further items are ignored).

    Returns:
        ``(0, 0, 0)`` or ``(255, 255, 255)``.
    """
    def channel(c: float) -> float:
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(c)) for c in background[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # contrast with black: (L+0.05)/0.05, with white: 1.05/(L+0.05)
    return (0, 0, 0) if (luminance + 0.05) ** 2 > 0.0525 else (255, 255, 255)


def draw_detections(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                    class_names: Sequence[str], colors: Sequence[tuple[int, int, int]] | None = None,
                    copy: bool = True) -> np.ndarray:
    """Draw boxes (N, 4) x1, y1, x2, y2 in pixels with "name 0.87" labels on a uint8 (H, W, 3) RGB image.

    Line width and font scale follow the picture's size; labels sit above the box, or inside it at the
    top edge of the picture.

    Args:
        image: uint8 (H, W, 3) RGB picture.
        boxes: (N, 4) x1, y1, x2, y2 in image pixels (clipped for drawing).
        scores: (N,) scores, shown with two decimals.
        class_ids: (N,) class indices; an id outside ``class_names`` is shown as its number.
        class_names: names indexed by class id.
        colors: RGB colour a class id (cycled); default :func:`class_colors` of ``len(class_names)``.
        copy: draw on a copy (default) instead of on ``image`` itself.

    Returns:
        The drawn uint8 (H, W, 3) RGB image (a copy unless ``copy=False``).
    """
    out = image.copy() if copy else image
    h, w = out.shape[:2]
    colors = colors or class_colors(len(class_names))
    thickness = max(1, int(round((h + w) / 600)))
    font_scale = max(0.4, (h + w) / 2000)
    font = cv2.FONT_HERSHEY_SIMPLEX
    # draw lower scores first so the best boxes' labels stay on top
    for i in np.argsort(np.asarray(scores), kind="stable"):
        cid = int(class_ids[i])
        color = colors[cid % len(colors)]
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        p1 = (int(round(max(min(x1, w - 1), 0))), int(round(max(min(y1, h - 1), 0))))
        p2 = (int(round(max(min(x2, w - 1), 0))), int(round(max(min(y2, h - 1), 0))))
        cv2.rectangle(out, p1, p2, color, thickness, lineType=cv2.LINE_AA)
        name = class_names[cid] if 0 <= cid < len(class_names) else str(cid)
        label = f"{name} {float(scores[i]):.2f}"
        (tw, th), baseline = cv2.getTextSize(label, font, font_scale, max(1, thickness // 2))
        pad = max(1, thickness)
        top = p1[1] - th - baseline - 2 * pad
        if top < 0:  # no room above: put the label inside the box
            top = p1[1]
        left = min(p1[0], max(w - tw - 2 * pad, 0))
        cv2.rectangle(out, (left, top), (left + tw + 2 * pad, top + th + baseline + 2 * pad), color, -1)
        cv2.putText(out, label, (left + pad, top + pad + th), font, font_scale, text_color_for(color),
                    max(1, thickness // 2), lineType=cv2.LINE_AA)
    return out
