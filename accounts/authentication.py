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
