import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from metrics.models import TrainingSession


def _generated_id(name: str) -> str:
    stem = slugify(name)[:40].strip("-_") or "session"
    return f"{stem}-{secrets.token_hex(4)}"


@transaction.atomic
def training_session_create(
    *, owner, id: str | None = None, name: str = "", algorithm: str = "", total_episodes: int | None = None
) -> tuple[TrainingSession, bool]:
    """Create a training session for ``owner``, or return the owner's existing one with that id.

    Returns ``(session, created)``. Raises ``ValidationError`` (field ``id``) when another
    user already owns the id, and for invalid fields.
    """
    if id:
        existing = TrainingSession.objects.select_for_update().filter(pk=id).first()
        if existing is not None:
            if existing.owner_id != owner.pk:
                raise ValidationError({"id": "This training session id is taken by another user."})
            return existing, False
    session = TrainingSession(
        id=id or _generated_id(name), owner=owner, name=name, algorithm=algorithm, total_episodes=total_episodes
    )
    session.full_clean()
    session.save(force_insert=True)
    return session, True


@transaction.atomic
def training_session_close(*, training_session: TrainingSession, actor) -> TrainingSession:
    """Mark a training session closed and close every live room that shows it."""
    from rooms.models import Room
    from rooms.services import room_close

    training_session.status = TrainingSession.Status.CLOSED
    training_session.save(update_fields=["status", "updated_at"])
    for room in Room.objects.filter(training_session=training_session, status__in=Room.LIVE_STATUSES):
        room_close(room=room, actor=actor)
    return training_session
