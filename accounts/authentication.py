from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.selectors import api_token_user


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer spt_…`` (or ``Token spt_…``)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        user = api_token_user(header[1].decode(errors="replace"))
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return user, None

    def authenticate_header(self, request):
        return "Bearer"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describe ``ApiTokenAuthentication`` in the OpenAPI schema, so the docs page can send a token."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer spt_…`"}
