"""The people around one room, each with a token, for the security suite.

``cast`` builds a password room with approval (``gated``) and a private room (``private``)
on the owner's training session, and one user per role:

- ``owner``: created the rooms and owns the training session;
- ``moderator``: staff (a manager of every room, ``rooms.access.can_manage_room``);
- ``spectator``: admitted to both rooms (approved, present; allowed in the private one);
- ``pending``: a join request waiting in the gated room;
- ``banned``: banned from both rooms;
- ``stranger``: signed in, unrelated;
- ``anonymous``: no credentials.

It also holds what the moderation routes act on: an invitation, the spectator's seat,
the pending request and the ban; a recorded episode; and a second session of the owner's
that the spectator watches (for comparisons).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

ROLES = ("owner", "moderator", "spectator", "pending", "banned", "stranger", "anonymous")
ROOM_PASSWORD = "open sesame 42"
RECORDED_EPISODE = 1


@dataclass
class Cast:
    users: dict
    tokens: dict
    training_session: object
    gated: object
    private: object
    seats: dict = field(default_factory=dict)
    join_request: object = None
    invitation: object = None
    bans: dict = field(default_factory=dict)
    timeouts: dict = field(default_factory=dict)
    invite_link: object = None
    second_session: object = None

    def token(self, role: str) -> str | None:
        return self.tokens.get(role)


@pytest.fixture
def cast(make_user, make_token, make_room, owner, training_session) -> Cast:
    from metrics.ingest import decisions_clean
    from metrics.recording_services import recording_append
    from metrics.services import training_session_create
    from rooms import invite_links, moderation, services
    from rooms.access import Visitor

    users = {
        "owner": owner,
        "moderator": make_user("moderator", staff=True),
        "spectator": make_user("spectator"),
        "pending": make_user("pending"),
        "banned": make_user("banned"),
        "stranger": make_user("stranger"),
    }
    make_user("invitee")
    make_user("troll")
    make_user("helper")
    make_user("noisy")
    tokens = {role: make_token(user) for role, user in users.items()}
    gated = make_room(access_level="password", password=ROOM_PASSWORD, require_approval=True, name="Gated")
    private = make_room(access_level="private", allowed_users=["spectator"], name="Private")
    cast = Cast(users=users, tokens=tokens, training_session=training_session, gated=gated, private=private)

    def join(room, role, **kwargs):
        return services.room_join(room=room, visitor=Visitor(user=users[role]), **kwargs)

    requested = join(gated, "spectator", password=ROOM_PASSWORD)
    services.join_request_decide(join_request=requested.join_request, approver=owner, approved=True)
    cast.seats["gated"] = join(gated, "spectator").spectator
    cast.seats["private"] = join(private, "spectator").spectator
    cast.join_request = join(gated, "pending", password=ROOM_PASSWORD).join_request
    cast.invitation, _created = services.invitation_create(room=gated, username="invitee", actor=owner)
    for name, room in (("gated", gated), ("private", private)):
        cast.bans[name] = services.ban_create(room=room, actor=owner, user=users["banned"], reason="spam")
        noisy = users["banned"].__class__.objects.get(username="noisy")
        cast.timeouts[name] = moderation.timeout_create(room=room, actor=owner, user=noisy, duration_seconds=600)
        moderation.moderator_add(room=room, username="helper", actor=owner)
    cast.invite_link, _token = invite_links.invite_link_create(room=gated, actor=owner)
    decision = {"episode": RECORDED_EPISODE, "step": 0, "action_probabilities": {"left": 0.4, "right": 0.6}}
    recording_append(training_session_id=training_session.pk, decisions=decisions_clean([decision]))
    cast.second_session, _created = training_session_create(owner=owner, id="cartpole-ppo")
    join(make_room(training_session=cast.second_session), "spectator")
    return cast
