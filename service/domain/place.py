"""Where a community or a person is: a language Kumpul speaks and a time zone it knows."""

from __future__ import annotations

from service import i18n
from service.errors import Unprocessable


def check_language(raw: object) -> str:
    if not i18n.is_language(raw):
        raise Unprocessable("language must be one of %(choices)s.", code="invalid_language",
                            choices=", ".join(i18n.LANGUAGES))
    return str(raw)


def check_zone(raw: object) -> str:
    if not i18n.is_zone(raw):
        raise Unprocessable("'%(zone)s' is not a time zone we know.", code="invalid_time_zone",
                            zone=str(raw)[:64], hint="Use a name such as Asia/Jakarta (WIB), "
                            "Asia/Makassar (WITA) or Asia/Jayapura (WIT).")
    return str(raw)
