"""Build-status badges: a small two-part SVG, "container" beside the state of the last build."""

from __future__ import annotations

from html import escape

LABEL = "container"
# Colours of the right-hand part by state.
STATE_COLOURS = {
    "ready": "#4c1",
    "building": "#dfb317",
    "failed": "#e05d44",
    "cancelled": "#9f9f9f",
    "none": "#9f9f9f",
}
CHAR_WIDTH = 7
PADDING = 10
HEIGHT = 20


def _text_width(text: str) -> int:
    return len(text) * CHAR_WIDTH + PADDING


def badge_svg(state: str) -> str:
    """The badge of one state (a key of STATE_COLOURS)."""
    left = _text_width(LABEL)
    right = _text_width(state)
    total = left + right
    colour = STATE_COLOURS[state]
    label, value = escape(LABEL), escape(state)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" '
        f'role="img" aria-label="{label}: {value}">'
        f"<title>{label}: {value}</title>"
        f'<rect width="{left}" height="{HEIGHT}" rx="3" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="{HEIGHT}" rx="3" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        f'font-size="11">'
        f'<text x="{left / 2}" y="14">{label}</text>'
        f'<text x="{left + right / 2}" y="14">{value}</text>'
        f"</g></svg>"
    )
