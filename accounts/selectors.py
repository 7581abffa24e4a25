from datetime import timedelta

from django.utils import timezone

from accounts.models import TOKEN_PREFIX, ApiToken, token_digest

# Writing last_used_at on every request would turn each API call into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def api_token_user(raw_token: str):
    """Return the active user a raw token belongs to, or None.

    The lookup is by SHA-256 digest, so timing reveals nothing about stored tokens.
    """
    if not raw_token or not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw_token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
