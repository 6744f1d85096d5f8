"""The watch loop: `inv watch` and `inv dev` (being built). ``ROOT_TASKS`` join the root namespace."""

from typing import Any

ROOT_TASKS: list[Any] = []
