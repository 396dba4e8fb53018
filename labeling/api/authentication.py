"""DRF's token authentication, the token and its user read in one plain statement.

Every API request of a crowd worker passes here; DRF's own class builds the same SELECT
through the ORM each time (select_related, then get), which cost about a millisecond of CPU a
request, as much as the worker's whole answer. The statement, the errors and what comes back
(the user, and the token as ``request.auth``) are DRF's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


@cache
def _token_sql(token_model: Any) -> tuple[str, list[str], list[str]]:
    """The statement, and the token's and the user's field attnames in its column order."""
    user_model = get_user_model()
    token_fields = list(token_model._meta.concrete_fields)
    user_fields = list(user_model._meta.concrete_fields)
    columns = [f't."{f.column}"' for f in token_fields] + [f'u."{f.column}"' for f in user_fields]
    user_fk = token_model._meta.get_field("user").column
    key = token_model._meta.get_field("key").column
    sql = (
        f"SELECT {', '.join(columns)} FROM {token_model._meta.db_table} t "  # noqa: S608
        f'JOIN {user_model._meta.db_table} u ON u."{user_model._meta.pk.column}" = t."{user_fk}" '
        f'WHERE t."{key}" = %s'
    )
    return sql, [f.attname for f in token_fields], [f.attname for f in user_fields]


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, in one statement without the ORM's query
    building."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        model = self.get_model()
        sql, token_names, user_names = _token_sql(model)
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = get_user_model().from_db(connection.alias, user_names, row[len(token_names) :])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = model.from_db(connection.alias, token_names, row[: len(token_names)])
        token.user = user
        return user, token
