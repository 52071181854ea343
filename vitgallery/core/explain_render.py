"""Pictures of an Explanation (vitgallery.core.explain), drawn with Pillow alone: the CLI writes them,
the window can show them or take the single layers (`heat_layer`) to blend with its own opacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vitgallery.core.explain import Explanation, PhotoPatches

OVERLAYS = ("similarity", "attention")
PANEL_HEIGHT = 384
GAP = 24  # between the two photos, where the keypoint lines cross
MARGIN = 12
LEGEND_WIDTH = 256
LEGEND_HEIGHT = 12
MAX_LINES = 60  # more keypoint lines hide the photos; the strongest spread is enough to see the map

# Anchors of matplotlib's "inferno": dark for little, yellow for much, readable without colour vision.
_INFERNO = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                     (250, 193, 39), (252, 255, 164)], dtype=np.float32)
_LINE_COLOURS = [(0, 220, 255), (255, 255, 255), (120, 255, 120), (255, 120, 220)]


@dataclass(frozen=True)
class HeatScale:
    """What the colours mean: `low` maps to the darkest colour, `high` to the brightest."""

    low: float
    high: float
    label: str  # what the numbers are, for the legend


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 -> uint8 RGB through the inferno colour map (values outside are clipped)."""
    position = np.clip(values, 0.0, 1.0) * (len(_INFERNO) - 1)
    below = np.minimum(position.astype(int), len(_INFERNO) - 2)
    share = (position - below)[..., None]
    return np.rint(_INFERNO[below] * (1 - share) + _INFERNO[below + 1] * share).astype(np.uint8)


def heat_layer(photo: PhotoPatches, heat: np.ndarray, scale: HeatScale, size: tuple[int, int],
               opacity: float) -> Image.Image:
    """An RGBA layer the size `size` of the photo as drawn: the heat grid, smoothly enlarged over the
    part of the photo the model saw, coloured, `opacity` (0..1) opaque; clear elsewhere."""
    width, height = size
    sx, sy = width / photo.image.width, height / photo.image.height
    left, top, right, bottom = photo.content
    box = (round(left * sx), round(top * sy), round(right * sx), round(bottom * sy))
    span = max(scale.high - scale.low, 1e-6)
    grid = Image.fromarray(((heat - scale.low) / span).astype(np.float32), mode="F")
    smooth = np.asarray(grid.resize((max(1, box[2] - box[0]), max(1, box[3] - box[1])), Image.Resampling.BILINEAR))
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[box[1]:box[3], box[0]:box[2], :3] = colour_map(smooth)[:box[3] - box[1], :box[2] - box[0]]
    rgba[box[1]:box[3], box[0]:box[2], 3] = round(255 * min(max(opacity, 0.0), 1.0))
    return Image.fromarray(rgba, mode="RGBA")


def similarity_scale(explanation: Explanation) -> HeatScale:
    """One scale for both photos and for every pair, 0 to 1: stretched to a pair's own range, an unrelated
    pair (patch cosines -0.5 to 0.1) was drawn as bright as a copy; below 0 is as dark as 0."""
    return HeatScale(0.0, 1.0, "patch cosine to the most alike patch of the other photo, beyond what the pair shares")


def attention_scale(attention: np.ndarray) -> HeatScale:
    """From none to the photo's most attended patch; shares of all the attention the patches get."""
    return HeatScale(0.0, float(attention.max()), "share of the CLS token's attention")


def render_explanation(explanation: Explanation, *, overlay: str = "similarity", opacity: float = 0.55,
                       titles: tuple[str, str] = ("query", "result"), panel_height: int = PANEL_HEIGHT) -> Image.Image:
    """The two photos side by side with the heat over each, a legend, and lines between the keypoints
    that one geometric map carries across. `overlay`: "similarity" (patches most alike across the
    pair) or "attention" (each photo's own CLS attention; needs explain_pair(attention=True))."""
    if overlay not in OVERLAYS:
        raise ValueError(f"unknown overlay {overlay!r}; expected one of {OVERLAYS}")
    photos = (explanation.query, explanation.result)
    if overlay == "similarity":
        scale = similarity_scale(explanation)
        layers = [(explanation.query_heat, scale), (explanation.result_heat, scale)]
    else:
        attentions = [photo.features.attention for photo in photos]
        if any(a is None for a in attentions):
            raise ValueError("no attention in this explanation: explain_pair(attention=True) with a model that has it")
        layers = [(a, attention_scale(a)) for a in attentions]

    font = ImageFont.load_default(size=14)
    sizes = [_panel_size(photo.image, panel_height) for photo in photos]
    title_h, legend_h = 22, 56
    # as wide as the legend's text too: two square photos left it cut off
    legend_text = max(font.getlength(layers[0][1].label), font.getlength(_similarity_line(explanation)))
    width = max(MARGIN * 2 + sizes[0][0] + GAP + sizes[1][0], MARGIN * 2 + LEGEND_WIDTH + 16 + math.ceil(legend_text))
    canvas = Image.new("RGB", (width, MARGIN + title_h + panel_height + legend_h), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    origins = [(MARGIN, MARGIN + title_h), (MARGIN + sizes[0][0] + GAP, MARGIN + title_h)]
    for photo, size, origin, title, (heat, scale) in zip(photos, sizes, origins, titles, layers):
        panel = photo.image.resize(size, Image.Resampling.BILINEAR).convert("RGBA")
        panel.alpha_composite(heat_layer(photo, heat, scale, size, opacity))
        canvas.paste(panel.convert("RGB"), (origin[0], origin[1] + (panel_height - size[1]) // 2))
        draw.text((origin[0], MARGIN), title, fill=(230, 230, 230), font=font)
    _draw_lines(draw, explanation, sizes, origins, panel_height)
    _draw_legend(draw, canvas, layers, overlay, explanation, font, MARGIN + title_h + panel_height + 10)
    return canvas


def _panel_size(image: Image.Image, height: int) -> tuple[int, int]:
    """The photo `height` tall, or at most twice as wide (a panorama then gets less height)."""
    width = round(image.width * height / image.height)
    if width <= 2 * height:
        return max(1, width), height
    return 2 * height, max(1, round(image.height * 2 * height / image.width))


def _draw_lines(draw: ImageDraw.ImageDraw, explanation: Explanation, sizes: list[tuple[int, int]],
                origins: list[tuple[int, int]], panel_height: int) -> None:
    lines = explanation.matches
    if not len(lines):
        return
    # An even spread over the query rather than the first MAX_LINES, which often crowd one corner.
    chosen = np.linspace(0, len(lines) - 1, min(MAX_LINES, len(lines))).round().astype(int)
    ends = []
    for xy, photo, size, origin in ((lines.query_xy, explanation.query, sizes[0], origins[0]),
                                    (lines.result_xy, explanation.result, sizes[1], origins[1])):
        scale = np.array([size[0] / photo.image.width, size[1] / photo.image.height])
        offset = np.array([origin[0], origin[1] + (panel_height - size[1]) // 2])
        ends.append(xy[chosen] * scale + offset)
    for number, (a, b) in enumerate(zip(*ends)):
        colour = _LINE_COLOURS[number % len(_LINE_COLOURS)]
        draw.line([tuple(a), tuple(b)], fill=colour, width=1)
        for x, y in (a, b):
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), outline=colour)


def _draw_legend(draw: ImageDraw.ImageDraw, canvas: Image.Image, layers: list, overlay: str,
                 explanation: Explanation, font: ImageFont.FreeTypeFont, top: int) -> None:
    bar = Image.fromarray(np.repeat(colour_map(np.linspace(0, 1, LEGEND_WIDTH))[None], LEGEND_HEIGHT, axis=0))
    canvas.paste(bar, (MARGIN, top))
    scale: HeatScale = layers[0][1]
    if overlay == "similarity":
        low, high = f"{scale.low:.2f}", f"{scale.high:.2f}"
    else:  # each photo has its own maximum
        low, high = "0", " / ".join(f"{s.high:.1%}" for _, s in layers)
    draw.text((MARGIN, top + LEGEND_HEIGHT + 2), low, fill=(230, 230, 230), font=font)
    draw.text((MARGIN + LEGEND_WIDTH, top + LEGEND_HEIGHT + 2), high, fill=(230, 230, 230), font=font, anchor="ra")
    draw.text((MARGIN + LEGEND_WIDTH + 16, top - 2), scale.label, fill=(230, 230, 230), font=font)
    draw.text((MARGIN + LEGEND_WIDTH + 16, top + 18), _similarity_line(explanation), fill=(230, 230, 230), font=font)


def _similarity_line(explanation: Explanation) -> str:
    verdict = (f"{explanation.inliers} keypoints match through one geometric map"
               if explanation.verified else "keypoints do not verify this pair")
    return f"vector similarity {explanation.cosine:.2f}  ·  {verdict}"
