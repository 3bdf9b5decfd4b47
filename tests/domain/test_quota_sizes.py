import pytest

from cargohold.domain.quota import QuotaError, format_human_size, parse_human_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200M", 200_000_000),
        ("512Mi", 536_870_912),
        ("5G", 5_000_000_000),
        ("1TiB", 1_099_511_627_776),
        ("200 Mi", 209_715_200),
        ("1K", 1000),
        ("1KB", 1000),
        ("2GiB", 2 * 2**30),
        ("12345", 12345),
    ],
)
def test_human_sizes_parse_like_quay(text: str, expected: int) -> None:
    assert parse_human_size(text) == expected


@pytest.mark.parametrize("text", ["100B", "100 B", "1ZiB", "1Yi", "1.5GiB", "GiB", "-5G", "5 GiB "])
def test_unusable_sizes_are_refused(text: str) -> None:
    with pytest.raises(QuotaError):
        parse_human_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(500, "500.0 Byte"), (200000, "195.3 KiB"), (1073741824, "1.0 GiB"), (1024, "1.0 KiB")],
)
def test_sizes_are_shown_in_binary_units(size: int, text: str) -> None:
    assert format_human_size(size) == text
