"""Search by a region of a photo, and searches refined by "more like this" / "not this" marks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.photos import make_photo
from vitgallery.core.library import Library, LibraryError, QueryNeedsModel
from vitgallery.core.models import load_embedder
from vitgallery.core.refine import refined_query
from vitgallery.core.region import Region, RegionError, region_image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW = 6  # the stored pixels are shown turned a quarter clockwise


@pytest.fixture(scope="module")
def tiny():
    return load_embedder("tiny-test")


@pytest.fixture
def library(photo_folder, tmp_path, tiny):
    lib = Library.open(photo_folder, tmp_path / "lib")
    lib.index(tiny, decode_workers=0)
    yield lib
    lib.close()


def test_region_parsing_and_clipping():
    assert Region.parse("10, 20,300,40") == Region(10, 20, 300, 40)
    for bad in ("10,20,30", "a,b,c,d", "-5,0,10,10", ""):
        with pytest.raises(RegionError, match="X,Y,W,H"):
            Region.parse(bad)
    assert Region(600, 400, 500, 500).within(800, 600) == Region(600, 400, 200, 200)
    with pytest.raises(RegionError, match="inside the 800x600 photo"):
        Region(900, 0, 50, 50).within(800, 600)


def test_a_region_is_read_in_the_photo_as_shown_at_full_size(tmp_path):
    """EXIF orientation applied, coordinates of the full-size photo even when the JPEG decodes smaller."""
    shown = make_photo(1, (1800, 2400))  # portrait, as a viewer shows it
    target = Region(300, 1200, 1400, 1050)
    shown.paste(make_photo(5).resize((1400, 1050)), (target.x, target.y))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW
    path = tmp_path / "turned.jpg"
    shown.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)  # stored landscape

    part = region_image(path, target, input_size=32)

    # decoded at half size (a JPEG draft: 525 px tall is enough), yet the same part of the photo
    assert part.size == (700, 525)
    expected = np.asarray(make_photo(5).resize(part.size), dtype=np.int16)
    assert np.abs(np.asarray(part, dtype=np.int16) - expected).mean() < 12


def test_searching_with_the_box_of_a_pasted_photo_finds_that_photo(library, photo_folder, tiny, tmp_path):
    query = make_photo(40, (1200, 900))
    query.paste(Image.open(photo_folder / "img_05.jpg"), (700, 100))
    path = tmp_path / "collage.jpg"
    query.save(path, quality=95)

    hits = library.search(path, k=3, embedder=tiny, region=Region(700, 100, 320, 240))

    # The keypoints of the region verify the photo it came from, and only that one (the tiny random
    # model's cosines rank nothing: an unverified hit may score above the weakest verified one).
    verified = [hit.path for hit in hits if hit.verified]
    assert verified == [photo_folder / "img_05.jpg"]


def test_a_region_of_a_library_photo_is_embedded_and_leaves_that_photo_out(library, photo_folder, tiny):
    query = photo_folder / "img_03.jpg"
    with pytest.raises(QueryNeedsModel):
        library.search(query, region=Region(0, 0, 160, 120))
    hits = library.search(query, k=11, embedder=tiny, region=Region(0, 0, 160, 120))
    assert len(hits) == 11 and query not in [h.path for h in hits]
    with pytest.raises(RegionError):
        library.search(query, embedder=tiny, region=Region(400, 0, 10, 10))


def test_the_refined_query_moves_towards_liked_and_away_from_unliked():
    rng = np.random.default_rng(0)
    query, liked, unliked = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 16)))
    moved = refined_query(query, liked[None], unliked[None])
    assert np.linalg.norm(moved) == pytest.approx(1.0, abs=1e-6)
    assert moved @ liked > query @ liked and moved @ unliked < query @ unliked
    np.testing.assert_allclose(refined_query(query, np.zeros((0, 16)), np.zeros((0, 16))), query, atol=1e-6)


def test_marks_move_the_ranking_as_marked(library, photo_folder):
    query = photo_folder / "img_00.jpg"
    before = [h.path for h in library.search(query, k=11, verify=False)]
    liked, unliked = before[-1], before[0]

    after = [h.path for h in library.search(query, k=11, verify=False, like=[liked], unlike=[unliked])]

    assert after.index(liked) < before.index(liked)  # "more like this" climbs
    assert unliked not in after and len(after) == 10  # "not this" leaves the results
    again = [h.path for h in library.search(query, k=11, verify=False)]
    assert again == before  # marks belong to one search: nothing is stored


def test_only_photos_of_the_library_can_be_marked(library, photo_folder, tmp_path):
    outside = tmp_path / "elsewhere.jpg"
    make_photo(7).save(outside)
    with pytest.raises(LibraryError, match="not a photo of this library"):
        library.search(photo_folder / "img_00.jpg", like=[outside])
