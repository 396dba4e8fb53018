"""config.file_stores.name_is_safe: a name from a curator is judged, never raised on."""

from __future__ import annotations

from django.core.files.storage import Storage

from config.file_stores import CHECKPOINTS, StoredFile, name_is_safe


class OffDiskStorage(Storage):
    """A store with no path on this host's disk, as S3's (Storage.path is not implemented)."""


def test_names_with_a_nul_byte_are_unsafe_not_an_error(media_root):
    names = ["run-1.pt\x00", "a\x00/../../etc/passwd", "run-1.pt"]

    assert [name_is_safe(StoredFile(CHECKPOINTS, name)) for name in names] == [False, False, True]


def test_a_store_off_this_disk_refuses_a_nul_byte_too(settings):
    """A store without path() (S3) gets no realpath check: the name alone must be refused."""
    settings.STORAGES = {
        **settings.STORAGES,
        CHECKPOINTS: {"BACKEND": "tests.test_file_stores.OffDiskStorage"},
    }
    names = ["run-1.pt\x00", "../media/x.pt", "run-1.pt"]

    assert [name_is_safe(StoredFile(CHECKPOINTS, name)) for name in names] == [False, False, True]
