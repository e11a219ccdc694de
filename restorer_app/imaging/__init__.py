"""Reading and writing scans (bit depth, alpha, ICC, EXIF, XMP, resolution) and provenance
records. No Qt here: the CLI, job runner and GUI all share this code."""

from .errors import ImageError
from .io import ScanImage, read_image, read_mask, write_image

__all__ = ["ImageError", "ScanImage", "read_image", "read_mask", "write_image"]
