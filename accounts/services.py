from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, token_digest


@transaction.atomic
def api_token_create(*, username: str, staff: bool = False, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``username`` (creating the user when missing); return it and the raw value.

    The raw value is returned once and never stored.
    """
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        # A user made for a token signs in with the token; a password must be set on purpose.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    raw = ApiToken.generate_raw()
    token = ApiToken(user=user, name=name, digest=token_digest(raw), hint=raw[:12])
    token.full_clean()
    token.save()
    return token, raw


def api_token_revoke(*, token: ApiToken) -> None:
    """Revoke ``token``; it stops authenticating at once."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
