"""Append an ``xmpMM:History`` event (``stEvt``) to an XMP packet, keeping everything else.

Archives track what happened to a file in its XMP history; a restored derivative gets one
more entry naming the software and its parameters."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_MM = "http://ns.adobe.com/xap/1.0/mm/"
ST_EVT = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
_PREFIXES = {"x": X, "rdf": RDF, "xmpMM": XMP_MM, "stEvt": ST_EVT}

# keys of an xmp_history dict -> stEvt fields
EVENT_FIELDS = {
    "action": "action",
    "when": "when",
    "software": "softwareAgent",
    "parameters": "parameters",
    "changed": "changed",
    "instance_id": "instanceID",
}


class InvalidXmp(ValueError):
    """The existing XMP packet is not XML, so it cannot be extended safely."""


def add_history(xmp: bytes | None, event: dict) -> bytes:
    """Return ``xmp`` (or a new packet) with ``event`` appended to its history.

    Raises ValueError for an unknown event key, InvalidXmp for a packet that is not XML.
    """
    unknown = set(event) - set(EVENT_FIELDS)
    if unknown:
        raise ValueError(f"unknown XMP history keys: {sorted(unknown)}")
    root = _parse(xmp) if xmp else ET.Element(f"{{{X}}}xmpmeta")
    for prefix, uri in _PREFIXES.items():
        ET.register_namespace(prefix, uri)
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF")
    if rdf is None:
        rdf = ET.SubElement(root, f"{{{RDF}}}RDF")
    descriptions = rdf.findall(f"{{{RDF}}}Description")
    desc = next((d for d in descriptions if d.find(f"{{{XMP_MM}}}History") is not None),
                descriptions[0] if descriptions else None)
    if desc is None:
        desc = ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    history = _child(desc, f"{{{XMP_MM}}}History")
    seq = _child(history, f"{{{RDF}}}Seq")
    item = ET.SubElement(seq, f"{{{RDF}}}li", {f"{{{RDF}}}parseType": "Resource"})
    for key, value in event.items():
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            ET.SubElement(item, f"{{{ST_EVT}}}{EVENT_FIELDS[key]}").text = text
    body = ET.tostring(root, encoding="unicode")
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            f'{body}\n<?xpacket end="w"?>').encode("utf-8")


def _child(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.find(tag)
    return found if found is not None else ET.SubElement(parent, tag)


def _parse(xmp: bytes) -> ET.Element:
    """Parse a packet, registering its own namespace prefixes so they survive re-writing."""
    data = bytes(xmp).strip(b"\x00 \t\r\n")
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            if prefix and not re.fullmatch(r"ns\d+", prefix):
                ET.register_namespace(prefix, uri)
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise InvalidXmp(f"existing XMP metadata is not valid XML ({exc})") from None
