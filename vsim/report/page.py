"""The shell every vsim HTML page shares: one self-contained file that opens offline."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from vsim.errors import VsimError

__all__ = ["BASE_CSS", "figure_div", "html_page", "save_page", "write_atomic"]

BASE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222;
       background: #fafafa; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { margin: 8px 0 4px; font-size: 1.7em; }
h2 { margin: 32px 0 8px; font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.caption { color: #555; font-size: 0.92em; margin: 2px 0 12px; }
.figure { background: white; border: 1px solid #e3e3e3; border-radius: 4px; padding: 4px; }
table { border-collapse: collapse; font-size: 0.9em; background: white; margin: 6px 0 12px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
footer { color: #888; font-size: 0.85em; margin-top: 40px; }
"""


# Pages are documents to archive next to the results, not plotly clients: no logo, no link to an
# online editor.
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def figure_div(fig: Any, div_id: str) -> str:
    """A plotly figure as a div, without plotly.js (html_page inlines it once). A fixed div id
    (plotly would draw a random one) keeps a page identical from one build to the next, so pages
    of reruns can be diffed."""
    import plotly.io as pio

    div = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                      config=PLOT_CONFIG)
    return f'<div class="figure">{div}</div>'


def html_page(title: str, css: str, content: str, footer: str) -> str:
    """A complete page: plotly.js inlined once in the head (the figures in ``content`` are
    written without it), the base style plus ``css``, no external resources."""
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{BASE_CSS}{css}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><main>{content}<footer>{footer}</footer></main></body></html>\n"
    )


def save_page(path: str | os.PathLike[str], text: str, what: str) -> Path:
    """Write a page in one piece (creating its folder); a failure is one error naming the file
    and ``what`` it is (e.g. "the comparison"). Returns the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise VsimError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place, so that an
    interrupted write never leaves a truncated page that looks complete."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
