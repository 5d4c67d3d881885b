"""Tools around machine definitions: Mermaid diagrams, the linter, the JSON Schema, systems."""

from __future__ import annotations
