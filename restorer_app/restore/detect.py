"""Suggest a damage mask for a scanned photo: dust specks, hair-like fibres and thin scratches.

Debris on a print or film is opaque or clear: it shows as a small, flat, near-white or near-black
mark, neutral in colour, whatever the picture under it. Film grain, fine texture and edges belong
to the picture: they vary, they take the colour of their surroundings, and where there is one
there are many. The detector looks for the first kind and discounts the second. The steps, and
why each is there (every number was chosen on Kodak24, the validation set of
``benchmarks/detection.py``; "F1" is its mean there, 0.925 for the whole detector):

1. Debris channels. Light debris is bright in every channel, so it stands out most in the darkest
   channel (min over R, G, B), even over saturated red or yellow; dark debris likewise in
   1 - max. Each polarity is searched in its own channel, which makes neutrality part of the
   contrast (a separate colour test added nothing on top). A greyscale scan is its own channel.
2. Contrast at two sizes: white top-hats (the channel minus its opening) with discs of 5 px,
   which keep lines up to 4 px wide (scratches, fibres) whatever their length, and of 9 px, which
   keep specks up to 8 px across. Anything wider (a white fence, a dark window) is picture.
3. Texture raises the bar: the local median (15 x 15) of the top-hat says how much fine structure
   and grain surround a pixel; damage covers far less than half of any window, so the median
   ignores it. Thresholds are a fixed contrast plus a multiple of that level (F1 0.901 with the
   best fixed thresholds alone).
4. Hysteresis: seeds have strong contrast (0.25 + 4 x texture) and are near white in the debris
   channel (>= 0.8); each defect grows from its seeds through connected pixels of weaker contrast
   (0.1 + 2 x texture, >= 0.7), so a scratch fading over a lighter area stays whole while
   texture highlights seldom get a seed (F1 0.835 with seeds alone).
5. Specks are small: at the 9-px size only components of at most 80 px spanning at most 12 px
   are kept; anything longer is left to the 5-px search, which sees it only if it is thin
   (F1 0.920 without the 9-px search: it adds the middle of 5-8 px specks).
6. Debris is flat and extreme: a flagged pixel stays only if the flagged pixels in the 7 x 7
   window around it average >= 0.8 in the debris channel and vary by no more than the grain
   (std at most max(grain, 0.025)). This is what tells a scratch from a window frame or a
   bright rim, which vary along their length (F1 0.796 without this step, 0.840 without the
   variation test, 0.912 without the level test). It is local, so a scratch that touches texture
   loses only the touching part. The grain is the noise level of the flattest tenth of the image
   (mean absolute Laplacian residual per 16-px block), so noisier scans get a looser test.
7. Debris is sparse: where more than 8 defects lie within 41 x 41 px, or flags cover more than
   15 % of such a window, the flags are a pattern (a halftone screen, fabric, stripes, a fence)
   and are dropped. Photos seldom trigger this (F1 unchanged), but without it a regular pattern
   of small light or dark marks is flagged from end to end. A very dusty scan loses its
   densest clusters.
8. Margin: the mask is grown by ``margin`` px (default 1) so a repair also covers the soft edge
   real debris has on a scan (F1 0.921 without it).

9. Repair (``repair_mask``, for ``restore --mask auto``): a missed damaged pixel keeps its
   near-white or near-black value while a false flag is only re-synthesised, so the repair mask
   adds back what step 6 dropped next to a kept defect: candidates within 4 px of it and
   near-extreme pixels (debris level >= 0.8) within 3 px, connected to it. Step 7 still looks
   at the suggested flags only. It is then grown by 2 px and cut back to the pixels that differ
   by >= 0.2 (0.1 since step 11) in some channel from the Telea fill of the grown mask: a fill
   is constrained by the pixels right beside a thin defect, so every clean pixel left in the
   mask costs (the true mask grown by 1 px loses 3 dB inside the damage). On Kodak24, filled
   by Navier-Stokes and scored inside the true damage: 20.1 dB with the 1-px margin and no cut
   (2.9x the damaged area), 21.2 with the cut (1.4x; true mask 25.6). Most of what is left is
   defects never found.
10. The damage network (``damage_net.py``) vouches for what the seed bar misses: compact specks
   inside texture, whose contrast sits under a bar that texture raises. Candidates are grown
   from looser seeds (0.15 + 2 x texture, no flatness test); where a candidate adds something,
   each of its pixels the network scores >= 0.7 is kept, then the crowd test, the margin and the
   cut apply as above. The network scores a pixel from its 35 x 35 neighbourhood
   (the look of debris and of its surroundings, learned on the training photos with synthetic
   debris), which separates a speck from a texture highlight far better than a threshold, yet
   alone it flags too much: as a gate on candidates it only decides between shapes the
   morphology already proposes. On all of Kodak24 (N-S proxy inside the damage), with a gate on
   each candidate's mean score of 0.6: 21.41 -> 22.35 dB, recall 0.933 -> 0.953, flags on a
   clean grainy crop 0.31 % -> 0.35 % (mean 0.7: 22.22 / 0.34 %, 0.5: 22.52 / 0.39 %; looser or
   stricter candidate seeds were worse). Pixel by pixel instead of the mean (session 12): a
   candidate grown through texture holds picture too, which pulled a speck's mean under the
   bar: 23.96 -> 24.14 dB, clean flags 0.240 -> 0.267 % (0.6: 24.16 / 0.291 %, 0.8: 24.09 /
   0.248 %).
11. Tight edges. Of what the repair mask still flagged beside a defect, most was picture: an
   edge or a texture highlight 0.2 from the Telea fill (Telea is poor in texture), and every
   such pixel widens what the fill must invent (flagging a tenth of the 1-px ring around the
   damage cost 1.4 dB inside it). Two tests drop it: a pixel must be nearer its defect's own
   level (per connected defect and polarity, the median of its pixels 0.3 or more from the fill)
   than half its distance to the fill, and a pixel the margin added must score >= 0.2 with the
   damage network. On Kodak24: 22.35 -> 23.01 dB, area 1.36x -> 1.12x the damage, flags on a
   clean grainy crop 0.35 % -> 0.19 % (nearer-level test alone 22.75, network alone 22.87;
   a margin of 1 or 3 px with both: 22.73 / 22.77). With these two guarding the edges, the cut
   of step 9 loosens from 0.2 to 0.1 from the fill, which keeps damage of moderate contrast the
   fill half explains: 23.35 dB, area 1.17x, clean flags 0.22 % (0.15: 23.26, 0.05: 23.34).
   A pixel the detector kept before the margin that lies 0.3 or more from the fill stays
   whatever the nearer-level test says: where a flagged region also holds picture, its median
   can sit far from the defect's level, and the test then dropped the defect itself (session 12,
   found on McMaster18, where it held 0.5 % of the damage's squared error: proxy 22.15 -> 22.72
   dB there, Kodak24 23.95 -> 23.96, CBSD68 22.63 -> 22.61).
12. Sure specks. The defects still missed lie outside every candidate (in bright texture the
   top-hat contrast sits under the raised bar). Where the network has read the image anyway
   (the tiles of step 10), near-extreme pixels (debris level >= 0.85) it scores >= 0.8, in
   components of at most 80 px, are added before the margin: 23.35 -> 23.67 dB on Kodak24 for
   0.04 % more of a clean crop flagged (score 0.9: 23.60 / +0.02 %; 0.7: 23.76 / +0.07 %,
   over the 0.05 % the gate was held to).
   Session 26: from a debris level of 0.75 instead of 0.85. Painted debris goes down to 0.82,
   and with the grain a faint speck sits at 0.78-0.84, under the seed bar's 0.8 too: the network
   scored 0.98 on a 2-px light speck (0.80 over 0.25) that Kodak24's 03-grey left in place, half
   the flow's error inside that case's damage. Kodak24: damaged pixels missed 821 -> 640, their
   squared error 20.0 -> 16.3, N-S proxy (pooled) 24.00 -> 24.11 dB on the colour cases and 23.28
   -> 23.31 on the grey; clean flags 0.568 -> 0.658 % (most of the rise is the 1-px dark frame
   line at the bottom of five Kodak photos, which looks like a scratch to the network; 0.70 and
   0.65 take the same defects, 0.80 leaves 9.23 of the colour cases' squared error missed, 0.75
   8.80, 0.85 11.96). The flow with `standard` inside the damage, Kodak24's 12 cases
   whose proxy moved: +0.34 +/- 0.15 dB, 8 up, 4 down (kodim15 +1.36, kodim20 +1.17, 03-grey
   +0.91; 21-grey -0.14). The test sets' 52 cases whose mask changed: +0.18 +/- 0.08 dB, 19 up,
   15 down (CBSD68 241004 +3.05, 163085 +2.10; 130026 -0.09); the grey copies gain little, their
   misses lie in texture, where the network is unsure too (quality log E97).
13. Peel. Where two defects cross or touch, or a speck sits on a scratch, the one found hides the
   rest: a window holding both levels is not flat (step 6), and the fill beside a found defect
   takes its level, so the cut of step 9 drops the neighbour. Steps 1-12 run once more on the
   image with the repair mask filled (Telea, as for the cut), and what they find is added. On
   Kodak24: 24.26 -> 24.48 dB, damage missed beside the mask 10 % -> 6 % of the squared error,
   flags on a clean grainy crop 0.263 % -> 0.301 % (a third pass: 24.51 / 0.314 %; Navier-Stokes
   as the peeling fill: 24.39).
14. Scratches followed at their level. A scratch is one piece of debris, so it shows one level
   along its whole length, while its contrast falls wherever it crosses light texture (dark
   texture for a dark scratch): there the texture raises every bar above it, above all on a
   grey scan, where no colour sets it apart. Each flagged component spanning 15 px or more at
   a debris level of at least 0.75 grows through connected pixels within 0.08 of its median
   colour in every channel that are thin (line contrast >= 0.05 in its polarity's channel),
   however far they run, passing through shorter flagged pieces of the same scratch; no margin
   and no cut apply to what it adds. Session 17, N-S proxy inside the damage with its flags on
   clean grainy crops: Kodak24 24.48 -> 24.67 dB, 0.301 -> 0.341 %; on the test sets McMaster18
   23.56 -> 23.82 dB, 0.378 -> 0.389 %; CBSD68 (24 photos) 23.05 -> 23.28 dB, 0.277 -> 0.282 %.
   Specks and fibres do not grow: probes that stopped at other flagged pieces (Kodak24) grew
   from every component to 24.82 dB but flagged 0.742 %, from 15 px 24.63 / 0.408 %, from 30 px
   24.63 / 0.316 % (McMaster18 23.75); from 30 px with a 1-px margin around what it adds 24.56,
   with contrast 0.03 24.66 / 0.321 %; from 15 px at distance 0.06 24.64 / 0.377 %; from every
   component at distance 0.12 24.79 / 1.197 %, at contrast 0.1 24.68 / 0.556 %.
   Session 25: from 15 px instead of 30. The proxy tied the two, and 30 flagged less; the flow
   pays the whole error of a missed pixel and little for a flagged clean one, and over a mesh of
   picture lines a scratch is often found only in pieces of 15-29 px (CBSD68's 223061-grey: 47 px
   of a dark scratch missed, 2.71 of squared error, 0.47 from 15 px). Missed squared error,
   30 -> 15 px: Kodak24 44.70 -> 43.94, McMaster18 42.18 -> 37.61, CBSD68 (24 photos) 24.15 ->
   22.23; flagged clean px +10 % / +10 % / +17 %. The flow with `standard` inside the damage, on
   the cases whose mask changed: Kodak24 (20) +0.017 dB on the mean (kodim05-grey +0.30, kodim12
   +0.25, kodim03 -0.08, kodim17-grey -0.08), pooled 23.61 -> 23.64; the test sets' 31 changed
   cases +0.060 dB (CBSD68 108005-grey +0.67, McMaster18 4 +0.46; 119082-grey -0.08), pooled
   McMaster18 23.97 -> 24.02, CBSD68 (24 photos) 23.25 -> 23.28 (quality log E95).
15. Defects judged apart (after step 6). Where a dark scratch crosses a bright area beside a dark
   one, the bright strip pinched between them is, to the top-hat, a light line: flat, near
   white, a "defect" that the extension of step 9 then floods into the bright area (in
   McMaster18's 7-grey a dozen such pixels on the scratch's edge cost 1.4 dB inside the damage,
   because every flagged pixel beside a thin defect widens what the fill must invent). So a
   defect that touches one of the other polarity keeps only the pixels whose top-hat contrast
   still clears the grow bar of step 4 once that other defect, grown by 1 px, is filled
   (Telea). Session 17, N-S proxy inside the damage: Kodak24 24.67 -> 24.75 dB, clean flags
   0.341 -> 0.339 %; McMaster18 23.82 -> 23.94 dB (0.389 % both); CBSD68 (24 photos) 23.28 ->
   23.39 dB (0.282 % both). Touching within 2 px: 24.75 / McMaster18 23.95; the seed bar instead
   of the grow bar: 24.74 / 0.333 %, 23.99; the judged defect's own pixels left out of the fill:
   24.72, 23.95.
   Session 24: the other polarity's defects as step 9's extension takes them, not only those
   kept. A light scratch whose level drops where it crosses a dark band (0.95 above, 0.8 on the
   band) fails the flatness test there; the dark picture pinched at its corners was kept as
   dark debris, flooded into the band, and the fill of the flagged band then hid the scratch
   from the cut of step 11 (CBSD68's 119082-grey: 44 damaged px missed, 12.2 of the flow's
   squared error inside the damage; 4.3 after). Judged against the other's candidates alone
   instead, it dropped real defects beside texture (Kodak24's 19-grey lost 15 damaged px).
16. Specks grown at their level (session 18). The cuts of steps 9 and 11 leave a speck's edge
   behind where it crosses texture or touches a brighter area (McMaster18's worst cases: light
   specks over light picture, the edge at 0.9 beside picture at 0.8). Each flagged component
   spanning less than 15 px (30 until session 25; the rest is step 14's) at a debris level of at
   least 0.75 takes the pixels around it, 1 px deep, that lie within 0.05 of its median colour in
   every channel and stand out of a 9-px opening by 0.15 or more in its polarity's channel. N-S
   proxy inside the damage and flags on clean grainy crops: Kodak24 24.75 -> 24.88 dB, 0.339 ->
   0.377 %; on the test sets McMaster18 23.94 -> 24.05 dB, 0.389 -> 0.439 %; CBSD68 (24 photos)
   23.39 -> 23.45 dB, 0.282 -> 0.326 %. Colour distance 0.06: 24.89 / 0.385 %; with the extension
   below, 2 px deep 24.92 / 0.371 %, and at distance 0.06 a contrast bar of 0.05 / 0.2: 24.94 /
   0.367 %, 24.90 / 0.353 %.
   Not taken: step 9's extension holding to the kept defect's level (within 0.05), which halves
   the flags this step adds (Kodak24 24.91 / 0.347 %) but drops the soft edges of painted
   defects, which the flow cannot afford: with `standard`, McMaster18 case 1 lost 0.19 dB and
   case 4 0.44 dB inside the damage.
   Steps 14 and 16 take each defect's level and colour per polarity (session 20): a flagged pixel
   belongs to the light defects where its light debris level is the higher. Labelled together, a
   dark speck touching a light scratch took the scratch's colour and never grew at its own
   (McMaster18 case 3). N-S proxy: Kodak24 24.88 -> 24.94 dB, McMaster18 24.05 -> 24.07, CBSD68
   23.45 -> 23.48, clean flags unchanged (0.376 / 0.439 / 0.326 %). The flow with `standard`
   inside the damage: all 27 McMaster18 cases 25.10 -> 25.14 dB (pooled over the damaged pixels
   23.77 -> 23.84), CBSD68's 6 cases 28.90 -> 28.95 (quality log E86).
17. Two readings (session 23). Every threshold above was tuned with the N-S proxy, which pays as
   much for a clean pixel flagged beside the damage as for a damaged one missed. The flow pays
   little for the first (it re-synthesises the pixel) and the whole error for the second (scope
   mask leaves a missed pixel's debris as it is): on McMaster18 the missed pixels held a fifth
   of its error inside the damage. A looser reading (the network's gate at 0.5, 0.4 since
   session 26, its sure specks at 0.7, specks grown 2 px) misses a fifth less of that error on Kodak24, but alone it lost
   up to 1 dB on cases where it dropped damaged pixels the strict reading holds: the cuts of
   steps 11 and 13 are not monotone in the thresholds (extra flags change the fill, and the
   levels of the defects they join). So the repair mask is both readings together, which drops
   nothing the strict one finds; they share the grain estimate and the network's scores.
   Kodak24: recall 98.3 -> 98.5 %, N-S proxy 24.94 -> 24.99 dB, clean flags 0.376 -> 0.480 %
   (``detection_s23.md``). The flow with `standard` inside the damage: McMaster18's 27 cases
   25.14 -> 25.27 dB (pooled 23.84 -> 24.01; case by case +0.13 +/- 0.05), CBSD68's 9 cases
   26.99 -> 27.02 (+0.03 +/- 0.05; quality log E90).
   Session 26: the looser reading's gate at 0.4 instead of 0.5. Kodak24: the colour cases' missed
   squared error 8.80 -> 6.27 (grey 7.46 -> 7.04), N-S proxy pooled 24.11 -> 24.18 dB (grey
   23.31 -> 23.31), clean flags 0.658 -> 0.689 % (0.3: 5.75, 24.20 dB, 0.739 %; the sure specks
   at 0.7 / 0.6 as well: 5.85, 24.19 dB). The flow with `standard` inside the damage, the 13
   cases whose missed pixels or proxy moved: +0.11 +/- 0.05 dB, 7 up, 4 down (kodim05 +0.42,
   19 +0.38, 13 +0.38; 21 -0.11, 08 -0.06). The test sets' 25 such cases: +0.05 +/- 0.03 dB, 13
   up, 11 down (quality log E98).
18. Holes at the debris level (session 24). The flow fills the mask from every unflagged pixel
   around it, so a damaged pixel left in a hole of the mask is context from every side: in
   CBSD68's 143090 one pixel of a speck (0.79 among 0.80-0.82) left unflagged cost 2.6 dB inside
   the damage. Holes of up to 4 px whose every pixel is near-extreme (>= 0.75) and within 0.08 of
   the median colour of the flagged pixels around it are filled. On Kodak24 that takes all 6
   holes holding damage and 78 of the 225 clean ones (McMaster18 6 of 6 and 64 of 158, CBSD68
   8 of 8 and 42 of 111); filling every hole also cost the flow context (McMaster18 5-grey
   -0.24 dB for 6 clean pixels). Step 15's change and this one, the flow with `standard`
   inside the damage (quality log E93): Kodak24's 12 most changed cases +0.03 dB on the mean
   (09-grey +0.71, 13-grey -0.25), McMaster18 pooled 24.01 -> 23.97 (case 1 -0.58: two damaged
   pixels beside a white area the light extension floods), CBSD68's 36 cases pooled 22.95 ->
   23.25 (N-S with the true mask 23.28 / 24.02). The repair mask's time is unchanged (4
   megapixels, one thread: 44.4 s before, 44.1 s after, the two timed side by side).
19. Greyscale scans (session 27). A scan with one channel, or three equal ones, is scored by a
   network of its own (``damage-net-grey.safetensors``): the colour one trained on for 1,800
   steps on greyscale crops only. The colour network had never seen three equal planes (the
   grain of its greyscale training crops was drawn per channel; mended in the trainer), and on
   grey copies it flagged three times the clean area it flags on colour, the missed damage
   there costing 1.1-2.9 dB against the true mask (colour 0.1-0.4). Kodak24's 12 grey copies,
   same thresholds: N-S proxy pooled 23.31 -> 23.68 dB, missed squared error 7.04 -> 7.00,
   flags beside the damage 11,094 -> 7,749 px, clean grainy crops 1.17 -> 0.79 % (the same
   steps with the grain per channel: 23.42 dB, 1.07 %). With the flags it saves, its loose
   reading takes the pixels it scores 0.2 (0.1-0.4 tried; 0.2: 23.70 dB, missed 6.20, clean
   0.88 %; 0.1 misses least, 4.61, but flags 1.04 % and gained 0.08 dB less with the flow).
   The flow with `standard` inside the damage, Kodak24's grey cases: +0.32 +/- 0.08 dB, 9 up,
   1 down (01-grey +0.73, 21-grey +0.71, 07-grey +0.70; 17-grey -0.02). The test sets'
   43 grey cases, all rerun: +0.21 +/- 0.06 dB, 34 up, 7 down (CBSD68 189080-grey +1.31, McMaster18 11-grey
   +1.24; CBSD68 3096-grey -1.13, whose mask only lost 4 clean flags); pooled against N-S with
   the true mask, McMaster18's grey -0.41 -> -0.25 dB, CBSD68's -0.18 -> +0.03 (quality log E99).

Cost: a dozen OpenCV filters; on a 4-megapixel photo with one thread of this CPU 0.8-1.6 s for
the suggested mask and 44 s for the repair mask, 28 s of it the strict reading (session 23, the
photo of ``benchmarks/detection.py``, on an otherwise idle machine; two threads: 30 s, 20 s
before step 17). In session 15 the one reading took 39-40 s (46-47 s before the network ran
channels-last; 22 s without the peel of step 13, which runs steps 1-12 twice): a few seconds for
the extension and the Telea fills, 25 s the damage network, which sees every 128-px tile holding
a loose candidate or a margin pixel (most of a photo), once, and again in the second search where
the fill reached its window. With 2 % damage spread over the photo that is nearly every tile
(keeping the second search's scores per tile the fill did not reach saved 2 s of 40; per pixel,
nothing more); sparser damage saves more. About a tenth of the flow's repair of such a photo with
2 % damage (454 s on two threads, ``benchmarks/scope_speed.py``). Step 14 adds about 0.1 s (one
thread, a 2048 x 2048 synthetic photo), step 16 about 0.4 s of 19.5 (two threads, the same photo,
session 18).
Not found: debris wider than 8 px, faint (semi-transparent) dust whose level is not near white
or black, light debris on white and dark debris on black areas, and debris inside dense texture
of similar contrast (the texture bar rises over it).
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
    peak_level: float = 0.75  # ... whose debris level is at least this (0.85 until session 26, step 12)
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
# For repair (``repair_mask``), chosen on Kodak24 by the PSNR that the damaged pixels left out of the
# mask would cap a restoration at ("ceiling"), with the flagged area kept within ~3x the damage.
# Most damage the suggested mask misses is the rest of a found defect that the flatness test drops
# (two defects of different levels, or a defect and its halo, in one 7x7 window): the repair mask
# takes back the candidates within 4 px of a kept pixel and the near-extreme pixels within 3 px.
# Then every pixel of the grown mask is compared with what inpainting the mask would put there:
# a pixel of the picture beside a defect is close to that fill, a damaged one is not (a debris
# level differs from the picture by far more than the grain). Keeping only the pixels 0.2 away
# from the fill in some channel halves the area (2.9x -> 1.4x the damage on Kodak24) while
# keeping what the margin was for, which lets the margin grow to 2 px. The network's gate (step 10)
# at 0.7 per pixel (0.6 on a candidate's mean until session 12) adds less than 0.05 % of a clean
# crop to the flags on Kodak24.
# Two more cuts (session 8, Kodak24): a clean pixel beside a defect often sits 0.2 from the Telea
# fill (texture), yet it is nearer the fill than the defect's own level (the median of the
# defect's pixels 0.3 or more from the fill), and the damage network, which scores pixels from
# their neighbourhood, reads it as picture: the margin's pixels stay only where it scores >= 0.2.
# With them guarding the edges, the cut to the fill can loosen from 0.2 to 0.1: it was dropping
# real damage of moderate contrast (0.2-0.3 from the picture) that the fill only half explains.
# Specks that no candidate proposes, the network's surest reads (score >= 0.8, debris level
# >= 0.85) among the tiles it has read anyway, add 0.3 dB for 0.04 % of a clean crop; from a
# level of 0.75 (session 26) they also take the faintest painted specks, which the grain puts
# under 0.85 and often under the seed bar's 0.8.
# Where two defects overlap or touch, the one found hides the other (a window holding both is not
# flat, and the fill beside it takes its level): searching again once the found ones are filled
# (session 14) finds the rest.
# A scratch is one piece of debris, so it shows one level along its whole length; where it crosses
# light texture (on a grey scan above all) its contrast falls under every bar and only its level
# still tells it from the picture (session 17): the long defects found grow along it.
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
    (``benchmarks/detection.py``, 1-px tolerance; ``detection_s27.md``). ``should_stop()`` true
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
