"""Suggest a damage mask for a scanned photo: dust specks, hair-like fibres and thin scratches.

Debris on a print or film is opaque or clear: a small, flat, near-white or near-black mark, neutral
in colour, whatever the picture under it. Grain, texture and edges belong to the picture: they vary,
take the colour of their surroundings, and where there is one there are many. The detector looks
for the first kind and discounts the second. Every threshold is chosen on Kodak24, the validation
set of ``benchmarks/detection.py`` (F1 with 1-px tolerance; McMaster18 and CBSD68 are its test sets).

The suggested mask (``detect_damage``): F1 0.925 on Kodak24, 0.916 / 0.922 on the test sets (top-hat
baseline 0.663 / 0.717 / 0.708). "F1 x without" is the detector less that step.
1. Debris channels: light debris is bright in every channel, so it stands out most in the darkest
   (min over R, G, B), even over saturated colour; dark debris in 1 - max. This makes neutrality
   part of the contrast (a separate colour test adds nothing).
2. Contrast: white top-hats of those channels with discs of 5 px (lines up to 4 px wide, any length)
   and 9 px (specks up to 8 px across); anything wider is picture.
3. Texture raises the bar: each threshold is a contrast plus a multiple of the local median (15 x 15)
   of the top-hat, which sparse damage does not move (F1 0.901 with the best fixed thresholds).
4. Hysteresis: seeds need contrast 0.25 + 4 x texture and a debris level >= 0.8; a defect grows
   through connected pixels of 0.1 + 2 x texture and >= 0.7, so a fading scratch stays whole (F1
   0.835 with seeds alone).
5. Specks: the 9-px search keeps components of at most 80 px spanning at most 12 px (F1 0.920
   without it: it adds the middle of 5-8 px specks).
6. Flat and extreme: a flagged pixel stays if the flags of its 7 x 7 window average a debris level
   >= 0.8 with a std of at most max(grain, 0.025), the grain being the noise of the flattest tenth of
   16-px blocks. A window frame or bright rim varies along its length (F1 0.796 without this step).
7. Sparse: where more than 8 defects lie within 41 x 41 px, or flags cover over 15 % of it, they are
   a pattern (halftone, fabric, a fence) and are dropped (F1 unchanged on photos).
8. Margin: ``margin`` px (default 1) cover the soft edge of real debris (F1 0.921 without it).

The repair mask (``repair_mask``, for ``restore --mask auto``) favours recall: the flow re-synthesises
a clean pixel flagged at little cost but pays the whole error of a damaged one left out. On Kodak24
it holds 98.9 % of the damaged pixels, 77 % of it is damage, and it flags 0.59 % of a clean grainy
crop. Figures below are the "N-S proxy" on Kodak24 (PSNR inside the damage after a Navier-Stokes fill
of the mask; 25.25 dB for this mask, 25.89 for the true one), without -> with the step; "flow": a
restoration with ``standard``, PSNR inside the damage.
9. Extension and cut: candidates within 4 px of a kept defect and near-extreme pixels (>= 0.8)
   within 3 px take back what step 6 dropped; grown by 2 px, the mask keeps the pixels >= 0.1 from
   the Telea fill of the mask, since every clean pixel beside a thin defect widens what a fill must
   invent (cut at 0.2: 20.1 -> 21.2 dB, area 2.9x -> 1.4x the damage; with step 11, 0.1 adds 0.3 dB).
10. Gate: candidates from looser seeds (0.15 + 2 x texture, no flatness test) keep the pixels the
   damage network (``damage_net.py``, 35 x 35 px of context) scores >= 0.7: specks in texture, under
   a bar texture raises (21.41 -> 22.35 dB, recall 0.933 -> 0.953; pixel by pixel rather than per
   candidate +0.18 dB). Alone it flags too much; as a gate it chooses among shapes already proposed.
11. Tight edges: a pixel must be nearer its defect's level than half its distance to the fill, and a
   margin pixel must score >= 0.2 (22.35 -> 23.01 dB, area 1.36x -> 1.12x); a pixel flagged before
   the margin and >= 0.3 from the fill always stays (McMaster18 22.15 -> 22.72 dB).
12. Sure specks: near-extreme pixels (>= 0.75: painted debris reaches down to 0.82, and grain puts a
   faint speck at 0.78-0.84) the network scores >= 0.8, in components of at most 80 px (23.35 ->
   23.67 dB for 0.04 % of a clean crop; missed squared error 8.80 at level 0.75, 11.96 at 0.85).
13. Peel: where defects touch, the one found hides the other, so steps 1-12 run again on the image
   with the mask filled (Telea) and add what they find (24.26 -> 24.48 dB; a third pass: +0.03).
14. Scratches at their level: a scratch keeps one level while its contrast falls over light texture.
   A defect spanning >= 15 px at level >= 0.75 grows, without margin or cut, through connected thin
   pixels (line contrast >= 0.05) within 0.08 of its median colour (Kodak24 24.48 -> 24.67 dB,
   McMaster18 23.56 -> 23.82; from 15 px rather than 30, McMaster18's missed squared error is 37.61
   against 42.18).
15. Apart: bright picture pinched between a dark scratch and a dark area looks like a light line, so
   a defect touching one of the other polarity (as step 9 extends it) keeps only the pixels that
   clear step 4's grow bar once the other, grown by 1 px, is filled (McMaster18 23.82 -> 23.94 dB).
16. Specks at their level: a defect spanning < 15 px at level >= 0.75 takes the pixels 1 px around it
   within 0.05 of its median colour that stand out of a 9-px opening by >= 0.15 (24.75 -> 24.88 dB).
   Steps 14 and 16 label light and dark defects apart, so a speck touching a scratch keeps its colour.
17. Two readings: the union of the strict reading and a loose one (gate 0.4, sure specks 0.7, specks
   grown 2 px). The cuts are not monotone in the thresholds, so the loose one alone can drop damage
   the strict one holds (McMaster18 flow 25.14 -> 25.27 dB; a loose gate of 0.4 rather than 0.5
   leaves a missed squared error of 6.27 against 8.80).
18. Holes: a damaged pixel in a hole of the mask is context for the fill, so holes of up to 4 px that
   are near-extreme (>= 0.75) and within 0.08 of the colour of the flags around them are filled (all
   6 holding damage on Kodak24, 78 of 225 clean ones; filling every hole costs the flow context).
19. Greyscale scans (one channel or three equal) use ``damage-net-grey.safetensors`` and a loose gate
   of 0.2 (Kodak24's grey copies 23.31 -> 23.68 dB, clean flags 1.17 -> 0.79 %; flow +0.21 +/- 0.06
   dB on the test sets' 43 grey cases).

Cost on a 4-megapixel photo, one thread: 1-3 s for the suggested mask, 40-44 s for the repair mask,
most of it the network on every 128-px tile holding a loose candidate or margin pixel; about a tenth
of the flow's repair of such a photo with 2 % damage. Not found: debris wider than 8 px, faint dust
whose level is not near white or black, light debris on white and dark debris on black, and debris
inside texture of similar contrast (the texture bar rises over it).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

from restorer_app.restore.damage_net import DamageNet, TileScores, default_detector_path, load_detector
from restorer_app.restore.prefill import fill_holes

LINE_ELEMENT = 5  # px: the opening removes lines up to 4 px wide
SPECK_ELEMENT = 9  # px: ... and specks up to 8 px across
TEXTURE_WINDOW = 15  # px: local median of the top-hat
SEED_CONTRAST, SEED_TEXTURE, SEED_LEVEL = 0.25, 4.0, 0.8
GROW_CONTRAST, GROW_TEXTURE, GROW_LEVEL = 0.1, 2.0, 0.7
SPECK_MAX_AREA, SPECK_MAX_SPAN = 80, 12  # px
LONG_DEFECT_SPAN = 15  # px: a defect spanning this much is followed as a scratch (step 14), a shorter one grows as a speck (16)
FLAT_WINDOW = 7  # px
FLAT_LEVEL = 0.8
FLAT_MIN_STD = 0.025  # floor of the allowed variation; above it, the grain
CROWD_WINDOW, CROWD_COUNT, CROWD_COVER = 41, 8, 0.15  # px, defects, fraction of the window
GRAIN_BLOCK = 16  # px: blocks of the grain estimate; the flattest tenth counts
BAND_PIXELS, BAND_OVERLAP = 4_000_000, 64  # large images are searched in overlapping bands
TOPHAT_BASELINE_ELEMENT, TOPHAT_BASELINE_THRESHOLD = 5, 0.4



class DetectionStopped(Exception):
    """Raised when the caller's ``should_stop()`` asked for it (checked before each reading of
    a band and before each tile the damage network scores)."""


class Tuning(NamedTuple):
    """The thresholds of one operating point of the detector."""

    seed_contrast: float = SEED_CONTRAST
    seed_texture: float = SEED_TEXTURE
    seed_level: float = SEED_LEVEL
    grow_contrast: float = GROW_CONTRAST
    grow_texture: float = GROW_TEXTURE
    grow_level: float = GROW_LEVEL
    flat_level: float = FLAT_LEVEL
    flat_std: float = 1.0  # allowed variation: this many times max(grain, FLAT_MIN_STD)
    reach: int = 0  # px: candidates this close to a kept pixel, in its component, are kept too
    flood: int = 0  # px: ... and then pixels this close whose debris level is at least flood_level
    flood_level: float = 0.8
    tight: float = 0.0  # after the margin, keep only pixels this far from the fill of the mask
    nearer_level: float = 0.0  # > 0: ... and nearer their defect's level than this times that distance
    margin_gate: float = 0.0  # > 0: pixels the margin added stay where the damage net scores >= this
    peak: float = 0.0  # > 0: add specks the damage net scores >= this where it has read the image
    peak_level: float = 0.75  # ... whose debris level is at least this (step 12)
    gate: float = 0.0  # > 0: add the loose candidates' pixels the damage net scores at least this
    gate_seed_contrast: float = 0.15  # ... the loose candidates' seed bar: this contrast
    gate_seed_texture: float = 2.0  # ... plus this many times the texture level
    peel: bool = False  # search again once what was found is filled, and add what that finds
    scratches: bool = False  # defects spanning LONG_DEFECT_SPAN px or more grow along thin pixels at their level
    apart: bool = False  # judge a defect touching one of the other polarity again with that one filled
    speck_growth: int = 0  # px: shorter defects grow this far through pixels at their own colour

    @property
    def reads_network(self) -> bool:
        """Whether a step of this reading asks the damage network (which the caller then loads)."""
        return self.gate > 0 or self.margin_gate > 0 or self.peak > 0


SUGGEST = Tuning()  # the suggested mask (``detect_damage``): best pixel F1
# For repair (``repair_mask``), chosen on Kodak24 by the N-S proxy, with the flagged area kept within
# ~3x the damage. Most damage the suggested mask misses is the rest of a found defect that the
# flatness test drops (two defects of different levels, or a defect and its halo, in one 7x7 window):
# the repair mask takes back the candidates within 4 px of a kept pixel and the near-extreme pixels
# within 3 px. Then every pixel of the grown mask is compared with what inpainting the mask would put
# there: a pixel of the picture beside a defect is close to that fill, a damaged one is not (a debris
# level differs from the picture by far more than the grain). That cut halves the area (2.9x -> 1.4x
# the damage at 0.2) while keeping what the margin is for, which lets the margin be 2 px. The
# network's gate (step 10) at 0.7 per pixel adds less than 0.05 % of a clean crop to the flags.
# Two more cuts guard the edges: a clean pixel beside a defect often sits 0.2 from the Telea fill
# (texture), yet it is nearer the fill than the defect's own level (the median of the defect's pixels
# 0.3 or more from the fill), and the damage network, which scores pixels from their neighbourhood,
# reads it as picture: the margin's pixels stay only where it scores >= 0.2. With them, the cut to
# the fill can be 0.1 rather than 0.2, which keeps real damage of moderate contrast (0.2-0.3 from
# the picture) that the fill only half explains.
# Specks that no candidate proposes, the network's surest reads (score >= 0.8) among the tiles it
# has read anyway, add 0.3 dB for 0.04 % of a clean crop; from a debris level of 0.75 they also take
# the faintest painted specks, which the grain puts under 0.85 and often under the seed bar's 0.8.
# Where two defects overlap or touch, the one found hides the other (a window holding both is not
# flat, and the fill beside it takes its level): searching again once the found ones are filled
# finds the rest.
# A scratch is one piece of debris, so it shows one level along its whole length; where it crosses
# light texture (on a grey scan above all) its contrast falls under every bar and only its level
# still tells it from the picture: the long defects found grow along it.
# A bright patch of picture pinched between a dark scratch and a dark area is, to the top-hat, a
# light speck (and likewise dark picture between light ones): a defect that touches one of the other
# polarity must still stand out once that one is filled.
# A speck is painted at one level too: one found short of its edge (the cuts drop the edge where it
# crosses texture or touches a brighter area) grows by a pixel through pixels of its own colour.
REPAIR = Tuning(reach=4, flood=3, tight=0.1, gate=0.7, nearer_level=0.5, margin_gate=0.2, peak=0.8, peel=True,
                scratches=True, apart=True, speck_growth=1)
# A missed damaged pixel costs the flow its whole error, a clean one flagged costs little, yet a
# looser reading alone drops damaged pixels the strict one holds (the cuts of steps 11 and 13 are
# not monotone in the thresholds): the repair mask is both readings together (step 17).
REPAIR_LOOSE = REPAIR._replace(gate=0.4, peak=0.7, speck_growth=2)
# A greyscale scan is scored by the network fine-tuned on greyscale crops (step 19), which flags
# less of the picture: its loose reading takes the pixels it scores 0.2.
REPAIR_LOOSE_GREY = REPAIR_LOOSE._replace(gate=0.2)
REPAIR_MARGIN = 2
# An unflagged pixel inside the mask is context the flow's fill leans on from every side: a speck's
# missed pixel left there spreads over the whole repair, so a hole at the level of the debris around
# it is filled (step 18).
REPAIR_HOLE = 4  # px: holes of at most this area inside the repair mask are candidates
TIGHT_INPAINT_RADIUS = 3  # px, Telea
LEVEL_REFERENCE = 0.3  # distance from the fill above which a pixel surely shows its defect's level
SCRATCH_LEVEL = 0.75  # a defect grows along its length only if its debris level is at least this
SCRATCH_LEVEL_DISTANCE = 0.08  # ... through pixels this close to its level in every channel
SCRATCH_CONTRAST = 0.05  # ... that stand out of a 5-px opening by at least this (thin)
SPECK_LEVEL_DISTANCE = 0.05  # a shorter defect grows through pixels this close to its colour
SPECK_GROWTH_CONTRAST = 0.15  # ... that stand out of a 9-px opening by at least this
_NEIGHBOURS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])

_MEDIAN_TOP = 0.25
_LAPLACIAN = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def detect_damage(image: np.ndarray, margin: int = 1, tuning: Tuning = SUGGEST) -> np.ndarray:
    """Bool HxW mask (True = damaged) of dust, fibres and thin scratches in ``image``.

    ``image``: float HxW or HxWxC in [0, 1], C = 1, 3 or 4 (alpha, the last channel of 2 or 4,
    is ignored). ``margin``: pixels added around each defect. This is the one entry point for an
    automatic mask (``restorer detect``, ``restore --mask auto``). Large images are searched in
    bands of about 4 megapixels that overlap by 64 px, so the working memory stays near 200 MB
    whatever the size (24 MP: 190 MB instead of 760 MB). Every step but the growth of a defect
    from its seeds (step 4) and along its level (step 14) looks at most 20 px away, so the bands
    change nothing unless a faint stretch of scratch lies more than 64 px from any seed, or from
    any found part, of it in its band.
    """
    return _detect(image, margin, (tuning,))


def repair_mask(image: np.ndarray, margin: int = REPAIR_MARGIN,
                should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Bool HxW mask for ``restore --mask auto``: every defect :func:`detect_damage` finds, and
    the fainter ones the damage network confirms, to their whole extent and no further (steps
    9 to 18 of the module notes). On all of Kodak24 (validation) it covers 98.9 % of the damaged
    pixels, 77 % of what it flags is damage, and it flags 0.59 % of a clean grainy crop
    (``benchmarks/detection.py``, 1-px tolerance). ``should_stop()`` true
    raises :class:`DetectionStopped` at its next poll: a 4-megapixel scan takes 40-44 s with one
    thread, its polls lie at most 5.4 s apart (most under 2 s)."""
    return _detect(image, margin, (REPAIR, REPAIR_LOOSE), should_stop, REPAIR_HOLE, (REPAIR, REPAIR_LOOSE_GREY))


def detector_weights(image: np.ndarray) -> Path:
    """The damage network's weights :func:`repair_mask` reads for ``image`` (greyscale scans have
    their own): what the provenance of a restoration with ``--mask auto`` names."""
    return default_detector_path(_is_greyscale(_colour_planes(image)))


def _detect(image: np.ndarray, margin: int, tunings: tuple[Tuning, ...],
            should_stop: Callable[[], bool] | None = None, hole: int = 0,
            grey_tunings: tuple[Tuning, ...] | None = None) -> np.ndarray:
    """The union of the masks each of ``tunings`` (``grey_tunings`` on a greyscale scan, if
    given) reads, band by band, with the holes in it of at most ``hole`` px that look like the
    debris around them filled; the readings of a band share its grain estimate and the damage
    network's scores."""

    def check() -> None:
        if should_stop is not None and should_stop():
            raise DetectionStopped("stopped while looking for damage")

    colour = _colour_planes(image)
    grey = _is_greyscale(colour)
    if grey and grey_tunings is not None:
        tunings = grey_tunings
    height, width = colour.shape[:2]
    rows = max(BAND_PIXELS // max(width, 1) // GRAIN_BLOCK, 1) * GRAIN_BLOCK
    tops = range(0, height, rows)
    residuals = [_block_residuals(_extremes(colour[top : top + rows])[0]).ravel() for top in tops]
    grain = _grain_from_residuals(np.concatenate(residuals))
    mask = np.zeros((height, width), bool)
    for top in tops:
        start, stop = max(top - BAND_OVERLAP, 0), min(top + rows + BAND_OVERLAP, height)
        band_colour = colour[start:stop]
        scores = None
        if any(tuning.reads_network for tuning in tunings):
            scores = TileScores(_damage_net(grey), band_colour, check)
        band = np.zeros(band_colour.shape[:2], bool)
        for tuning in tunings:
            check()
            band |= _detect_band(band_colour, grain, margin, tuning, scores)
        if hole > 0 and band.any():
            band |= _holes_at_debris_level(band_colour, band, hole)
        mask[top : top + rows] = band[top - start : top - start + rows]
    return mask


def estimate_grain(plane: np.ndarray) -> float:
    """Noise std of ``plane`` (HxW) where it is flattest: the mean absolute Laplacian residual
    of each 16-px block, the 10th percentile over blocks (texture only ever adds to it)."""
    return _grain_from_residuals(_block_residuals(np.asarray(plane, np.float32)))


def _block_residuals(plane: np.ndarray) -> np.ndarray:
    residual = np.abs(cv2.filter2D(plane, cv2.CV_32F, _LAPLACIAN, borderType=cv2.BORDER_REFLECT))
    h, w = residual.shape
    size = (max(w // GRAIN_BLOCK, 1), max(h // GRAIN_BLOCK, 1))
    return cv2.resize(residual, size, interpolation=cv2.INTER_AREA)


def _grain_from_residuals(residuals: np.ndarray) -> float:
    # a Gaussian's mean absolute value is sqrt(2/pi) std; the kernel's gain on white noise is 6
    return float(np.percentile(residuals, 10)) / (6.0 * np.sqrt(2.0 / np.pi))


def _extremes(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The darkest and the brightest channel of each pixel."""
    planes = cv2.split(np.ascontiguousarray(colour))
    darkest, brightest = planes[0], planes[0]
    for plane in planes[1:]:
        darkest, brightest = np.minimum(darkest, plane), np.maximum(brightest, plane)
    return darkest, brightest


def _detect_band(colour: np.ndarray, grain: float, margin: int, tuning: Tuning = SUGGEST,
                 known_scores: TileScores | None = None) -> np.ndarray:
    """The mask of one band; ``known_scores``: the damage network's scores of this band so far,
    needed when ``tuning.reads_network`` (another reading of the band shares them; the second
    search of step 13 reuses them wherever the fill changed nothing)."""
    light, dark = _debris_planes(colour)
    light_features, dark_features = _contrasts(light), _contrasts(dark)  # shared with the gate
    light_kept, light_candidates = _debris(light_features, grain, tuning)
    dark_kept, dark_candidates = _debris(dark_features, grain, tuning)
    if tuning.apart:
        extended = (_extend(light_kept, light_candidates, light, tuning),
                    _extend(dark_kept, dark_candidates, dark, tuning))
        light_kept, dark_kept = _standing_apart(colour, (light_kept, dark_kept), extended,
                                                (light_features, dark_features), tuning)
    mask = _uncrowded(light_kept | dark_kept)
    if tuning.reach > 0 or tuning.flood > 0:
        mask = (_extend(mask & light_kept, light_candidates, light, tuning)
                | _extend(mask & dark_kept, dark_candidates, dark, tuning))
    scores = known_scores
    if tuning.gate > 0:
        mask = mask | _net_confirmed(scores, (light_features, dark_features), mask, tuning)
    if tuning.peak > 0:
        mask = mask | _net_peaks(scores, np.maximum(light, dark), mask, tuning)
    core = mask
    if margin > 0 and mask.any():
        mask = cv2.dilate(mask.view(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).view(bool)
    if tuning.tight > 0 and mask.any():
        mask = _deviating(colour, mask, core, tuning)
    if tuning.margin_gate > 0 and (mask & ~core).any():
        margin_pixels = mask & ~core
        mask = (mask & core) | (margin_pixels & (scores.at(margin_pixels) >= tuning.margin_gate))
    if tuning.peel and mask.any():
        peeled = fill_holes(colour, mask, cv2.INPAINT_TELEA, TIGHT_INPAINT_RADIUS)
        known = scores.after_change(peeled, mask) if scores is not None else None
        mask = mask | _detect_band(peeled, grain, margin, tuning._replace(peel=False, scratches=False, speck_growth=0), known)
    if tuning.scratches and mask.any():
        mask = _continued_scratches(colour, mask, (light_features, dark_features))
    if tuning.speck_growth > 0 and mask.any():
        mask = _grown_specks(colour, mask, (light_features, dark_features), tuning.speck_growth)
    return mask


def _defects(colour: np.ndarray, mask: np.ndarray, features):
    """The flagged components of ``mask`` (8-connected), light and dark pixels apart: labels,
    span (px), whether each is light debris, its median debris level and its median colour (steps
    14 and 16 grow them at their level). A dark speck touching a light scratch is its own defect:
    labelled together, it took the scratch's colour and never grew at its own."""
    light_pixels = features[0][LINE_ELEMENT][0] >= features[1][LINE_ELEMENT][0]
    light_count, light_labels, light_stats, _ = cv2.connectedComponentsWithStats(
        (mask & light_pixels).view(np.uint8), connectivity=8)
    dark_count, dark_labels, dark_stats, _ = cv2.connectedComponentsWithStats(
        (mask & ~light_pixels).view(np.uint8), connectivity=8)
    labels = np.where(dark_labels > 0, dark_labels + light_count - 1, light_labels).astype(np.int32)
    count = light_count + dark_count - 1
    stats = np.concatenate([light_stats, dark_stats[1:]])
    flagged = labels[mask]
    debris_levels = [_component_medians(flagged, level[LINE_ELEMENT][0][mask], count) for level in features]
    colours = np.stack([_component_medians(flagged, channel[mask], count) for channel in np.moveaxis(colour, 2, 0)], 1)
    span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    is_light = np.arange(count) < light_count
    return labels, span, is_light, np.where(is_light, *debris_levels), colours


def _continued_scratches(colour: np.ndarray, mask: np.ndarray, features) -> np.ndarray:
    """``mask`` and the rest of its long defects: from each flagged component spanning at least
    LONG_DEFECT_SPAN px at a debris level of SCRATCH_LEVEL or more, the connected thin pixels (line
    contrast >= SCRATCH_CONTRAST in its polarity's channel) within SCRATCH_LEVEL_DISTANCE of
    its median colour in every channel, however far they run."""
    labels, span, is_light, debris_level, colours = _defects(colour, mask, features)
    grows = (debris_level >= SCRATCH_LEVEL) & (span >= LONG_DEFECT_SPAN)
    grows[0] = False
    if not grows.any():
        return mask
    thin = [level[LINE_ELEMENT][1] >= SCRATCH_CONTRAST for level in features]
    owner = np.where(grows[labels], labels, 0)
    height, width = mask.shape
    frontier = np.argwhere(owner > 0)
    while len(frontier):
        rows = (frontier[:, None, 0] + _NEIGHBOURS[None, :, 0]).ravel()
        cols = (frontier[:, None, 1] + _NEIGHBOURS[None, :, 1]).ravel()
        source = np.repeat(owner[frontier[:, 0], frontier[:, 1]], len(_NEIGHBOURS))
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        rows, cols, source = rows[inside], cols[inside], source[inside]
        free = owner[rows, cols] == 0  # a shorter piece of the same scratch is passed through
        rows, cols, source = rows[free], cols[free], source[free]
        line = mask[rows, cols] | np.where(is_light[source], thin[0][rows, cols], thin[1][rows, cols])
        near = np.abs(colour[rows, cols] - colours[source]).max(axis=1) <= SCRATCH_LEVEL_DISTANCE
        taken = line & near
        rows, cols, source = rows[taken], cols[taken], source[taken]
        owner[rows, cols] = source
        frontier = np.unique(np.stack([rows, cols], axis=1), axis=0)
    return mask | (owner > 0)


def _grown_specks(colour: np.ndarray, mask: np.ndarray, features, reach: int) -> np.ndarray:
    """``mask`` and the pixels up to ``reach`` px around each flagged component spanning less than
    LONG_DEFECT_SPAN at a debris level of SCRATCH_LEVEL or more that lie within
    SPECK_LEVEL_DISTANCE of its median colour in every channel and stand out of a 9-px opening by
    SPECK_GROWTH_CONTRAST in its polarity's channel: the edge of a speck the cuts left behind."""
    labels, span, is_light, debris_level, colours = _defects(colour, mask, features)
    grows = (debris_level >= SCRATCH_LEVEL) & (span < LONG_DEFECT_SPAN)
    grows[0] = False
    if not grows.any():
        return mask
    standing = [level[SPECK_ELEMENT][1] >= SPECK_GROWTH_CONTRAST for level in features]
    owner = np.where(grows[labels], labels, 0)
    for _ in range(reach):
        # labels of a band stay far below 2**24, so float32 (which OpenCV dilates) holds them exactly
        nearest = cv2.dilate(owner.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
        rows, cols = np.nonzero((nearest > 0) & (owner == 0) & ~mask)
        source = nearest[rows, cols]
        taken = np.abs(colour[rows, cols] - colours[source]).max(axis=1) <= SPECK_LEVEL_DISTANCE
        taken &= np.where(is_light[source], standing[0][rows, cols], standing[1][rows, cols])
        owner[rows[taken], cols[taken]] = source[taken]
    return mask | (owner > 0)


def _standing_apart(colour: np.ndarray, kept: tuple[np.ndarray, np.ndarray], others: tuple[np.ndarray, np.ndarray],
                    features, tuning: Tuning) -> tuple[np.ndarray, np.ndarray]:
    """The light and dark defects (``kept``), less the pixels of a defect touching one of the
    other polarity (``others``: that polarity's defects as step 9's extension takes them) whose
    top-hat contrast falls under the grow bar once that one is filled (Telea): picture that only
    looked like debris beside it. The extension, not only the kept defects, because a defect the
    flatness test dropped (a scratch whose level changes where it crosses dark picture) pinches
    the picture beside it just as well."""
    judged = []
    for index, (own, other) in enumerate(((kept[0], others[1]), (kept[1], others[0]))):
        if not own.any() or not other.any():
            judged.append(own)
            continue
        beside_other = cv2.dilate(other.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
        count, labels = cv2.connectedComponents(own.view(np.uint8), connectivity=8)
        touching = np.zeros(count, bool)
        touching[labels[beside_other & own]] = True
        touching[0] = False
        suspects = touching[labels]
        if not suspects.any():
            judged.append(own)
            continue
        filled = fill_holes(colour, beside_other, cv2.INPAINT_TELEA, TIGHT_INPAINT_RADIUS)
        plane = _debris_planes(filled)[index]
        stands = np.zeros_like(own)
        for element in (LINE_ELEMENT, SPECK_ELEMENT):
            stands |= _tophat(plane, element) >= tuning.grow_contrast + tuning.grow_texture * features[index][element][2]
        judged.append(own & (~suspects | stands))
    return judged[0], judged[1]


def _net_confirmed(scores: TileScores, features, mask: np.ndarray, tuning: Tuning) -> np.ndarray:
    """Defects under the seed bar that the damage network vouches for: the pixels of candidates
    grown from looser seeds (no flatness test) that it scores >= ``tuning.gate``, pixel by pixel
    (a candidate grown through texture holds picture too); the crowd test of step 7 still applies."""
    where = _loose_candidates(features, tuning) & ~mask  # only what would add something is scored
    if not where.any():
        return where
    confirmed = where & (scores.at(where) >= tuning.gate)
    return _uncrowded(mask | confirmed) & confirmed


def loose_candidates(image: np.ndarray, tuning: Tuning = REPAIR) -> np.ndarray:
    """Bool HxW: the pixels the repair mask asks the damage network about (its trainer weights them)."""
    return _loose_candidates([_contrasts(level) for level in _debris_planes(_colour_planes(image))], tuning)


def _loose_candidates(features, tuning: Tuning) -> np.ndarray:
    loose = tuning._replace(seed_contrast=tuning.gate_seed_contrast, seed_texture=tuning.gate_seed_texture)
    candidates = np.zeros(features[0][LINE_ELEMENT][0].shape, bool)
    for contrasts in features:
        specks = _small_components(_hysteresis_candidates(contrasts[SPECK_ELEMENT], loose))
        candidates |= _hysteresis_candidates(contrasts[LINE_ELEMENT], loose) | specks
    return candidates


def _net_peaks(scores: TileScores, level: np.ndarray, mask: np.ndarray, tuning: Tuning) -> np.ndarray:
    """Specks no candidate proposes (under a texture-raised top-hat bar) that the network is
    sure of: near-extreme pixels scoring >= ``tuning.peak``, in components of at most
    SPECK_MAX_AREA px, in the tiles it has read for the gate; the crowd test applies."""
    peaks = (scores.scores >= tuning.peak) & (level >= tuning.peak_level) & ~mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(peaks.view(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] <= SPECK_MAX_AREA
    small[0] = False
    peaks = small[labels]
    return _uncrowded(mask | peaks) & peaks


@lru_cache(maxsize=2)
def _damage_net(grey: bool) -> DamageNet:
    return load_detector(grey=grey)


def _is_greyscale(colour: np.ndarray) -> bool:
    """One channel, or three equal ones (a greyscale scan stored as RGB)."""
    if colour.shape[2] == 1:
        return True
    return bool((colour[:, :, 0] == colour[:, :, 1]).all() and (colour[:, :, 1] == colour[:, :, 2]).all())


def _deviating(colour: np.ndarray, mask: np.ndarray, core: np.ndarray, tuning: Tuning) -> np.ndarray:
    """The pixels of ``mask`` that differ by at least ``tuning.tight`` in some channel from the
    Telea fill of ``mask`` (what the picture around them says they would be without damage) and,
    with ``tuning.nearer_level``, that look more like their defect than like that fill; the
    pixels of ``core`` (flagged before the margin) at least LEVEL_REFERENCE from it always stay."""
    deviation = colour - fill_holes(colour, mask, cv2.INPAINT_TELEA, TIGHT_INPAINT_RADIUS)
    distance = np.abs(deviation).max(axis=2)
    kept = mask & (distance >= tuning.tight)
    if tuning.nearer_level <= 0:
        return kept
    lighter = deviation.mean(axis=2) > 0
    nearer = np.zeros_like(kept)
    for side in (kept & lighter, kept & ~lighter):  # light and dark debris have their own levels
        count, labels = cv2.connectedComponents(side.view(np.uint8), connectivity=8)
        reference = side & (distance >= LEVEL_REFERENCE)  # surely debris: its level
        level = np.stack([_component_medians(labels[reference], channel[reference], count)
                          for channel in np.moveaxis(colour, 2, 0)], axis=1)
        measured = np.bincount(labels[reference], minlength=count) > 0
        to_level = np.abs(colour - level[labels]).max(axis=2)
        nearer |= side & ((to_level < tuning.nearer_level * distance) | ~measured[labels])
    return nearer | (core & (distance >= LEVEL_REFERENCE))


def _component_medians(labels: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Median of ``values`` per label 0..count-1 (0 where a label has none), without a loop."""
    order = np.lexsort((values, labels))
    ordered_labels, ordered_values = labels[order], values[order]
    first = np.searchsorted(ordered_labels, np.arange(count))
    end = np.searchsorted(ordered_labels, np.arange(count), side="right")
    medians = np.zeros(count, np.float32)
    present = end > first
    medians[present] = ordered_values[((first + end - 1) // 2)[present]]
    return medians


def tophat_baseline(image: np.ndarray) -> np.ndarray:
    """The classical detector to beat: white + black top-hat of the luminance (5-px disc), with a
    fixed threshold of 0.4 (the best of sizes 3-11 and thresholds 0.1-0.55 on Kodak24)."""
    colour = _colour_planes(image)
    weights = np.array([0.299, 0.587, 0.114], np.float32) if colour.shape[2] == 3 else np.ones(1, np.float32)
    luminance = np.ascontiguousarray(colour @ weights)
    disc = _disc(TOPHAT_BASELINE_ELEMENT)
    light = cv2.morphologyEx(luminance, cv2.MORPH_TOPHAT, disc)
    dark = cv2.morphologyEx(luminance, cv2.MORPH_BLACKHAT, disc)
    return np.maximum(light, dark) >= TOPHAT_BASELINE_THRESHOLD


def _colour_planes(image: np.ndarray) -> np.ndarray:
    """HxWxC float32 colour planes without alpha (C = 1 or 3)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image must be HxW or HxWxC with 1-4 channels, not {image.shape}")
    return image[:, :, :1] if image.shape[2] <= 2 else image[:, :, :3]


def _disc(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _debris(contrasts: dict, grain: float, tuning: Tuning = SUGGEST) -> tuple[np.ndarray, np.ndarray]:
    """Debris of one polarity, and the candidates it was picked from; ``contrasts`` is
    :func:`_contrasts` of the debris channel (near 1 on debris)."""
    level = contrasts[LINE_ELEMENT][0]
    lines = _hysteresis_candidates(contrasts[LINE_ELEMENT], tuning)
    specks = _small_components(_hysteresis_candidates(contrasts[SPECK_ELEMENT], tuning))
    max_std = tuning.flat_std * max(grain, FLAT_MIN_STD)
    candidates = lines | specks
    return _flat_and_extreme(candidates, level, max_std, tuning.flat_level), candidates


def _extend(kept: np.ndarray, candidates: np.ndarray, level: np.ndarray, tuning: Tuning) -> np.ndarray:
    """``kept`` and the candidates within ``reach`` px of it, then the near-extreme pixels within
    ``flood`` px, each connected to a kept pixel (the parts of a defect the flatness test dropped)."""
    if tuning.reach > 0 and kept.any():
        near = cv2.dilate(kept.view(np.uint8), _disc(2 * tuning.reach + 1)).view(bool)
        kept = _grow(kept, candidates & near)
    if tuning.flood > 0 and kept.any():
        near = cv2.dilate(kept.view(np.uint8), _disc(2 * tuning.flood + 1)).view(bool)
        kept = _grow(kept, near & (level >= tuning.flood_level))
    return kept


def _debris_planes(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The channels light and dark debris stand out in most (step 1): the darkest channel, and
    one minus the brightest."""
    darkest, brightest = _extremes(colour)
    return np.ascontiguousarray(darkest), np.ascontiguousarray(1.0 - brightest)


def _contrasts(level: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(level, top-hat contrast, texture level) for each element size: computed once per band
    and polarity, thresholded by the detector and again, more loosely, by the network's gate."""
    out = {}
    for element in (LINE_ELEMENT, SPECK_ELEMENT):
        contrast = _tophat(level, element)
        out[element] = (level, contrast, _local_median(contrast, TEXTURE_WINDOW))
    return out


def _tophat(level: np.ndarray, element: int) -> np.ndarray:
    """How far each pixel stands above the opening of ``level`` by a disc of ``element`` px."""
    return cv2.morphologyEx(level, cv2.MORPH_TOPHAT, _disc(element))


def _hysteresis_candidates(features: tuple[np.ndarray, np.ndarray, np.ndarray], tuning: Tuning = SUGGEST) -> np.ndarray:
    t = tuning
    level, contrast, texture = features
    seeds = (contrast >= t.seed_contrast + t.seed_texture * texture) & (level >= t.seed_level)
    weak = (contrast >= t.grow_contrast + t.grow_texture * texture) & (level >= t.grow_level)
    return _grow(seeds, weak)


def _local_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median over a window x window neighbourhood of ``values`` in [0, 0.25], in steps of 0.001
    (OpenCV's large-window median is for 8-bit images; a texture level of 0.25 already puts
    every threshold out of reach, so nothing above it needs telling apart)."""
    quantised = np.round(np.clip(values, 0.0, _MEDIAN_TOP) * (255.0 / _MEDIAN_TOP)).astype(np.uint8)
    return cv2.medianBlur(quantised, window).astype(np.float32) * np.float32(_MEDIAN_TOP / 255.0)


def _grow(seeds: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The connected components of ``weak | seeds`` that hold a seed."""
    count, labels = cv2.connectedComponents((weak | seeds).view(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[labels[seeds]] = True
    keep[0] = False
    return keep[labels]


def _small_components(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    span = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (stats[:, cv2.CC_STAT_AREA] <= SPECK_MAX_AREA) & (span <= SPECK_MAX_SPAN)
    keep[0] = False
    return keep[labels]


def _flat_and_extreme(mask: np.ndarray, level: np.ndarray, max_std: float, min_level: float = FLAT_LEVEL) -> np.ndarray:
    """Flagged pixels whose flagged neighbours are near white on average and vary little."""
    if not mask.any():
        return mask
    window = (FLAT_WINDOW, FLAT_WINDOW)
    weight = mask.astype(np.float32)
    weighted = level * weight
    flagged = np.nonzero(mask)
    count = cv2.boxFilter(weight, -1, window, normalize=False)[flagged]
    mean = cv2.boxFilter(weighted, -1, window, normalize=False)[flagged] / count
    mean_square = cv2.boxFilter(weighted * level, -1, window, normalize=False)[flagged] / count
    variance = np.maximum(mean_square - mean * mean, 0.0)
    keep = (mean >= min_level) & (variance <= max_std * max_std)
    out = np.zeros_like(mask)
    out[flagged[0][keep], flagged[1][keep]] = True
    return out


def _fill_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """``mask`` with its holes (unflagged components not touching the border) of at most
    ``max_area`` px filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).view(np.uint8), connectivity=4)
    h, w = mask.shape
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    inside = (left > 0) & (top > 0) & (right < w) & (bottom < h)
    fill = inside & (stats[:, cv2.CC_STAT_AREA] <= max_area)
    fill[0] = False
    return mask | fill[labels]


def _holes_at_debris_level(colour: np.ndarray, mask: np.ndarray, max_area: int) -> np.ndarray:
    """The holes of ``mask`` (of at most ``max_area`` px) whose every pixel is near-extreme (debris
    level SCRATCH_LEVEL or more) and within SCRATCH_LEVEL_DISTANCE in every channel of the median
    colour of the flagged pixels around the hole: a defect's own pixel the cuts dropped."""
    holes = _fill_holes(mask, max_area) & ~mask
    if not holes.any():
        return holes
    count, labels = cv2.connectedComponents(holes.view(np.uint8), connectivity=4)
    # labels of a band stay far below 2**24, so float32 (which OpenCV dilates) holds them exactly
    around = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    ring = mask & (around > 0)
    colours = np.stack([_component_medians(around[ring], channel[ring], count)
                        for channel in np.moveaxis(colour, 2, 0)], axis=1)
    light, dark = _debris_planes(colour)
    alike = (np.maximum(light, dark) >= SCRATCH_LEVEL) & (
        np.abs(colour - colours[labels]).max(axis=2) <= SCRATCH_LEVEL_DISTANCE)
    unlike = np.bincount(labels[holes & ~alike], minlength=count) > 0
    return holes & ~unlike[labels]


def _uncrowded(mask: np.ndarray) -> np.ndarray:
    """Drop flagged pixels where the flags crowd: many defects or much cover in one window."""
    if not mask.any():
        return mask
    _, _, _, centroids = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    centres = np.zeros(mask.shape, np.float32)
    rows, cols = np.round(centroids[1:, ::-1]).astype(int).T
    np.add.at(centres, (rows, cols), 1.0)
    window = (CROWD_WINDOW, CROWD_WINDOW)
    defects = cv2.boxFilter(centres, -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)
    cover = cv2.blur(mask.astype(np.float32), window)
    return mask & (defects <= CROWD_COUNT) & (cover <= CROWD_COVER)
