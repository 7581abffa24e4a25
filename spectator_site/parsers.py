"""The API's JSON parser: DRF's, with a body nested too deeply to decode answered as a 400."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Python's decoder recurses once per nesting level; "[[[[…" past its limit is no 500.
            raise ParseError("JSON parse error - nested too deeply.") from None
