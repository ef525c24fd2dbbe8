"""
A griffe extension for the API reference: reST inline markup in the docstrings, shown
as Markdown.

anyconc's docstrings are reST (``:param:`` fields, which mkdocstrings' ``sphinx`` style
reads), with Sphinx roles and double-backquote literals in their text. This turns
``:class:`~anyconc.Task``` into ```Task``` (``~`` keeps the last component, as in Sphinx),
````x```` into ```x``` and ``Example::`` into ``Example:``; the indented block after it
is already a Markdown code block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|exc|attr|mod|data|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    text = target.rsplit(".", 1)[-1] if tilde else target.lstrip(".")
    return f"`{text}`"


def rst_to_markdown(text: str) -> str:
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(r"`\1`", text)
    return re.sub(r"(?m)^(\s*\S.*?)::$", r"\1:", text)


class RstInline(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
