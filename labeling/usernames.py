"""The one username rule: the model field's validator, so the admin, ``createsuperuser``, the
API, the forms and every account service apply it. Django only (no models)."""

from __future__ import annotations

import unicodedata

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

# Format and control characters (zero-width, right-to-left overrides), line and paragraph
# separators: invisible in a name, and they make one name look like another.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_unicode_username = UnicodeUsernameValidator()


def validate_username(value: str) -> None:
    """The one username rule, for the API, the forms and every service that makes an account:
    Django's (letters, digits and @ . + - _ only), no invisible or control character, and
    nothing path-like (no ".."). Raises ValidationError."""
    if any(unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in value):
        raise ValidationError(
            "A username can't hold invisible or control characters (line breaks, zero-width "
            "or right-to-left marks).",
            code="invisible",
        )
    _unicode_username(value)
    if ".." in value:
        raise ValidationError("A username can't hold two dots in a row.", code="dots")
