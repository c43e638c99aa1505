"""The PitVis data set layout: paths built from numbers, and finding a root's videos."""

from pathlib import Path

import pytest

from orstream.errors import OrstreamError
from orstream.pitvis import layout


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_paths_follow_the_pitvis_names(tmp_path: Path) -> None:
    assert layout.video_path(tmp_path, 7) == tmp_path / "videos" / "video_07.mp4"
    assert layout.video_path(tmp_path, 123) == tmp_path / "videos" / "video_123.mp4"
    assert layout.annotations_path(tmp_path, 3) == tmp_path / "annotations" / "annotations_03.csv"
    assert layout.narrations_path(tmp_path, 3) == tmp_path / "narrations" / "narrations_03.csv"
    assert layout.mask_path(tmp_path, 3, 42) == tmp_path / "masks" / "video_03" / "00042.png"
    assert layout.anatomy_path(tmp_path, 3, 0) == tmp_path / "anatomy" / "video_03" / "00000.png"
    assert layout.masks_folder(tmp_path, 12) == tmp_path / "masks" / "video_12"
    assert layout.anatomy_folder(tmp_path, 12) == tmp_path / "anatomy" / "video_12"


def test_a_negative_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="video number is 0 or more, not -1"):
        layout.video_path(tmp_path, -1)
    with pytest.raises(OrstreamError, match="second is 0 or more, not -5"):
        layout.mask_path(tmp_path, 1, -5)


def test_names_give_back_their_numbers(tmp_path: Path) -> None:
    for video in (1, 9, 25, 310):
        name = layout.video_path(tmp_path, video).name
        named = layout.VIDEO_FILE.fullmatch(name)
        assert named is not None and int(named.group(1)) == video
        annotations = layout.ANNOTATIONS_FILE.fullmatch(
            layout.annotations_path(tmp_path, video).name
        )
        assert annotations is not None and int(annotations.group(1)) == video
    uri = "file:///data/videos/video_07.mp4"
    number = layout.VIDEO_NUMBER.search(uri.rsplit("/", 1)[-1])
    assert number is not None and number.group(1) == "07"
    assert layout.VIDEO_FILE.fullmatch("video_07.mkv") is None


def test_videos_come_in_number_order_and_other_files_are_ignored(tmp_path: Path) -> None:
    for video in (100, 2, 10):
        touch(layout.video_path(tmp_path, video))
        touch(layout.annotations_path(tmp_path, video))
    touch(tmp_path / "videos" / "notes.mp4")
    touch(tmp_path / "videos" / "video_05.mkv")
    expected = {video: layout.video_path(tmp_path, video) for video in (2, 10, 100)}
    assert list(layout.find_videos(tmp_path).items()) == list(expected.items())
    annotated = layout.find_annotated_videos(tmp_path)
    assert list(annotated) == [2, 10, 100]
    assert annotated[10] == (expected[10], layout.annotations_path(tmp_path, 10))


def test_two_files_of_one_number_are_refused(tmp_path: Path) -> None:
    touch(tmp_path / "videos" / "video_1.mp4")
    touch(tmp_path / "videos" / "video_01.mp4")
    with pytest.raises(OrstreamError, match=r"video_01\.mp4 and .*video_1\.mp4 both hold video 1"):
        layout.video_files(tmp_path)


def test_video_files_of_an_empty_root_are_none(tmp_path: Path) -> None:
    assert layout.video_files(tmp_path) == {}
    (tmp_path / "videos").mkdir()
    assert layout.video_files(tmp_path) == {}


def test_finding_annotated_videos_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="nowhere: dataset root not found"):
        layout.find_annotated_videos(tmp_path / "nowhere")
    with pytest.raises(
        OrstreamError, match=r"videos: folder missing \(expected the PitVis layout\)"
    ):
        layout.find_annotated_videos(tmp_path)
    (tmp_path / "videos").mkdir()
    with pytest.raises(OrstreamError, match="annotations: folder missing"):
        layout.find_annotated_videos(tmp_path)
    (tmp_path / "annotations").mkdir()
    with pytest.raises(OrstreamError, match=r"videos: no video_NN\.mp4 files"):
        layout.find_annotated_videos(tmp_path)
    touch(layout.video_path(tmp_path, 3))
    with pytest.raises(
        OrstreamError, match=r"annotations_03\.csv: annotations missing for video_03\.mp4"
    ):
        layout.find_annotated_videos(tmp_path)


def test_finding_masked_videos_names_what_is_missing(tmp_path: Path) -> None:
    touch(layout.video_path(tmp_path, 1))
    touch(layout.video_path(tmp_path, 2))
    with pytest.raises(OrstreamError, match=r"masks: folder missing \(.*layout with masks\)"):
        layout.find_masked_videos(tmp_path)
    layout.masks_folder(tmp_path, 1).mkdir(parents=True)
    with pytest.raises(OrstreamError, match=r"video_02: masks missing for video_02\.mp4"):
        layout.find_masked_videos(tmp_path)
    layout.masks_folder(tmp_path, 2).mkdir()
    assert layout.find_masked_videos(tmp_path) == layout.find_videos(tmp_path)
    assert list(layout.find_masked_videos(tmp_path)) == [1, 2]


def test_mask_seconds_are_the_numbered_pngs_in_order(tmp_path: Path) -> None:
    assert layout.mask_seconds(tmp_path, 1) == []
    for second in (12, 0, 3):
        touch(layout.mask_path(tmp_path, 1, second))
    touch(layout.masks_folder(tmp_path, 1) / "README.md")
    touch(layout.masks_folder(tmp_path, 1) / "x1.png")
    assert layout.mask_seconds(tmp_path, 1) == [0, 3, 12]
    assert layout.mask_seconds(tmp_path, 2) == []


def test_anatomy_is_there_when_its_folder_is(tmp_path: Path) -> None:
    assert not layout.has_anatomy(tmp_path)
    touch(layout.anatomy_path(tmp_path, 1, 0))
    assert layout.has_anatomy(tmp_path)


def test_entries_name_everything_at_the_top_level() -> None:
    assert set(layout.ENTRIES) == {
        "videos",
        "annotations",
        "masks",
        "anatomy",
        "narrations",
        "map_steps.csv",
        "map_instruments.csv",
        "titles.csv",
        "phantom.json",
    }
