"""Shared fixtures: the real speech data in ../shared (required, never silently skipped)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("SPECMON_DATA", REPO.parent / "shared" / "data" / "speech"))


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    d = data_dir()
    if not (d / "manifest.csv").is_file():
        pytest.fail(
            f"speech data not found: expected {d}/manifest.csv (the shared corpus beside the "
            "repository, or set SPECMON_DATA)"
        )
    return d


@pytest.fixture(scope="session")
def manifest_rows(speech_dir: Path) -> list[dict]:
    with open(speech_dir / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def pick(rows: list[dict], speaker: str, emotion: str, n: int = 1) -> list[dict]:
    out = [r for r in rows if r["speaker"] == speaker and r["emotion"] == emotion][:n]
    assert out, f"no {emotion} clip of {speaker} in the manifest"
    return out
