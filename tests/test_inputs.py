"""Bulk inputs: ids for paths and URLs, and manifest files (plain lists and CSV)."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechmatics_modes import BulkInput, ConfigurationError, read_manifest
from speechmatics_modes._inputs import inputs_of

URL = "https://bucket.example/calls/one.wav?X-Amz-Signature=abc"


def test_a_path_is_keyed_by_its_absolute_form_and_a_url_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [path, url] = inputs_of(["a.wav", URL])
    assert path == BulkInput(str(tmp_path / "a.wav"), str(tmp_path / "a.wav"))
    assert path.origin() == tmp_path / "a.wav"
    assert url.origin() == URL
    assert url.is_url


def test_a_plain_manifest_lists_paths_relative_to_itself_and_urls(tmp_path: Path) -> None:
    manifest = tmp_path / "lists" / "inputs.txt"
    manifest.parent.mkdir()
    manifest.write_text(f"# recordings\nday1/a.wav\n\n{URL}\n/abs/b.wav\n")
    assert [item.source for item in read_manifest(manifest)] == [
        str(tmp_path / "lists" / "day1" / "a.wav"),
        URL,
        "/abs/b.wav",
    ]


def test_a_csv_manifest_keys_inputs_by_its_id_column(tmp_path: Path) -> None:
    manifest = tmp_path / "calls.csv"
    manifest.write_text(f"id,url,agent\ncall-1,{URL},ann\ncall-2,b.wav,bob\n")
    assert read_manifest(manifest) == [
        BulkInput("call-1", URL),
        BulkInput("call-2", str(tmp_path / "b.wav")),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id,agent\n1,ann\n", "no source column"),
        ("id,path\n1,a.wav\n1,b.wav\n", "twice"),
    ],
)
def test_a_bad_manifest_is_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(ConfigurationError, match=problem):
        read_manifest(manifest)


def test_a_missing_manifest_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the manifest"):
        read_manifest(tmp_path / "absent.txt")
