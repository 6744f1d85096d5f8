"""`.env.example` documents every configuration key the kit declares."""

from __future__ import annotations

from typing import Any

from conftest import REPO

from devloop.core.config import DEFAULTS


def keys(data: dict[str, Any], prefix: str = "app") -> list[str]:
    found = []
    for key, value in data.items():
        dotted = f"{prefix}.{key}"
        if isinstance(value, dict) and value and key not in ("environments",):
            found += keys(value, dotted)
        else:
            found.append(dotted)
    return found


def test_every_key_is_documented() -> None:
    text = (REPO / ".env.example").read_text()
    missing = [k for k in keys(DEFAULTS)
               if k not in text and "INVOKE_" + k.replace(".", "_").upper() not in text
               and not any(k.startswith(doc.rstrip(".")) for doc in ("app.helm.set",))]
    assert missing == []
