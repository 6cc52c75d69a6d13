"""MkDocs hook (mkdocs.yml ``hooks:``): show the Sphinx roles of liftbench's docstrings as plain code.

The docstrings are written in Sphinx style (``:class:`Lifted```), which mkdocstrings' Sphinx parser reads for
``:param:`` fields but leaves inline roles as text, so the API reference would print ``:class:Lifted``. This
drops the role and keeps the code: ``~a.b.C`` shows as ``C``, ``title <target>`` as ``title``.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>(~?)([^<]*?)(?: &lt;[^<]*?&gt;)?</code>")


def _plain(match: re.Match) -> str:
    short, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_plain, html)
