"""Writing one benchmark's section of benchmarks/RESULTS.md, keeping every other section."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(section: str, lines: list[str], results: Path = RESULTS) -> None:
    """Replace (or append) the section titled ``section`` (a ``## ...`` line)."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    body = section + "\n\n" + "\n".join(lines).rstrip() + "\n"
    start = text.find(section)
    if start < 0:
        text = text.rstrip() + "\n\n" + body
    else:
        nxt = text.find("\n## ", start + len(section))
        text = text[:start] + body + (text[nxt:] if nxt >= 0 else "")
    results.write_text(text)
