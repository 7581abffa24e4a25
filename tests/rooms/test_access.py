"""The access decision: an exhaustive matrix of ``decide_join``, the same roles against the real
database through ``services.room_join``, the predicates and fetchers, and property tests.

The expected outcome comes from ``expected_decision``, an oracle written from DESIGN.md
section 2 in a different shape from ``decide_join``: it lists every obstacle that applies to
a visitor on its own, then reports the one the visitor hears about first.
"""

import itertools
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import access, services
from rooms.access import (
    AccessRefused,
    JoinDecision,
    JoinFacts,
    LinkGrant,
    PasswordCheck,
    Refusal,
    RoomNotFound,
    Verdict,
    Visitor,
)
from rooms.models import AccessLevel, JoinRequest, Room, Spectator

PUBLIC, PASSWORD, INVITE_ONLY, PRIVATE = (
    AccessLevel.PUBLIC,
    AccessLevel.PASSWORD,
    AccessLevel.INVITE_ONLY,
    AccessLevel.PRIVATE,
)
PENDING, APPROVED, DENIED = JoinRequest.Status.PENDING, JoinRequest.Status.APPROVED, JoinRequest.Status.DENIED

# What the visitor hears about first when several obstacles apply. Waiting for approval is
# not a refusal but sits in the same order: a full room does not stop a request being filed.
WAIT_FOR_APPROVAL = "wait_for_approval"
PRIORITY = [
    Refusal.NOT_FOUND,
    Refusal.CLOSED,
    Refusal.EXPIRED,
    Refusal.BANNED,
    Refusal.TIMED_OUT,
    Refusal.LINK_INVALID,
    Refusal.LINK_NOT_YOURS,
    Refusal.LOCKED,
    Refusal.SIGN_IN_REQUIRED,
    Refusal.NOT_INVITED,
    Refusal.PASSWORD_REQUIRED,
    Refusal.WRONG_PASSWORD,
    Refusal.DENIED,
    WAIT_FOR_APPROVAL,
    Refusal.FULL,
]


def expected_decision(f: JoinFacts) -> JoinDecision:
    """The oracle: DESIGN.md section 2 rule by rule, independently of ``decide_join``."""
    insider = f.is_manager or f.is_allowed  # the creator/moderators, allowed_users, invitees
    ended_closed = f.status == Room.Status.CLOSED
    ended_expired = f.expired or f.status == Room.Status.EXPIRED
    # An approval past the room's approval_ttl is as good as none: the visitor asks again.
    on_file = None if (f.request_status == APPROVED and f.approval_expired) else f.request_status
    good_link = f.link in (LinkGrant.ENTRY, LinkGrant.ENTRY_WITH_PASSWORD)
    # Whoever is already present, is invited, has a pending or approved request on file, or
    # holds a link that vouches for the password passed the password gate; the rest type it.
    passed_password_gate = (
        f.is_allowed or f.already_present or on_file in (PENDING, APPROVED) or f.link == LinkGrant.ENTRY_WITH_PASSWORD
    )
    password_missing = f.password in (PasswordCheck.MISSING, PasswordCheck.NOT_CHECKED)

    obstacles = set()
    # A private room does not exist for outsiders, whatever its state.
    if f.access_level == PRIVATE and not insider:
        obstacles.add(Refusal.NOT_FOUND)
    # Nobody, managers included, enters an ended room.
    if ended_closed:
        obstacles.add(Refusal.CLOSED)
    if ended_expired:
        obstacles.add(Refusal.EXPIRED)
    # Managers (owners and room moderators) are always admitted to a live room: no ban,
    # timeout, lock, link, password, approval or seat limit.
    if not f.is_manager:
        if f.is_banned:
            obstacles.add(Refusal.BANNED)
        if f.is_timed_out:
            obstacles.add(Refusal.TIMED_OUT)
        if f.link == LinkGrant.INVALID:
            obstacles.add(Refusal.LINK_INVALID)
        if f.link == LinkGrant.NOT_YOURS:
            obstacles.add(Refusal.LINK_NOT_YOURS)
        # A lock keeps newcomers out; whoever is present stays.
        if f.locked and not f.already_present:
            obstacles.add(Refusal.LOCKED)
        if f.access_level == INVITE_ONLY and not f.signed_in:
            obstacles.add(Refusal.SIGN_IN_REQUIRED)
        # A good invite link counts as an invitation.
        if f.access_level == INVITE_ONLY and f.signed_in and not f.is_allowed and not good_link:
            obstacles.add(Refusal.NOT_INVITED)
        if f.access_level == PASSWORD and not passed_password_gate:
            if password_missing:
                obstacles.add(Refusal.PASSWORD_REQUIRED)
            elif f.password == PasswordCheck.WRONG:
                obstacles.add(Refusal.WRONG_PASSWORD)
        # Invited users and those already watching skip approval; link holders do not.
        if f.require_approval and not f.is_allowed and not f.already_present:
            if on_file == DENIED:
                obstacles.add(Refusal.DENIED)
            elif on_file != APPROVED:
                obstacles.add(WAIT_FOR_APPROVAL)
        # A full room keeps out newcomers only; present spectators keep their seat.
        if not f.already_present and f.seats_taken >= f.max_spectators:
            obstacles.add(Refusal.FULL)

    if not obstacles:
        return JoinDecision(Verdict.ADMIT)
    first = min(obstacles, key=PRIORITY.index)
    if first == WAIT_FOR_APPROVAL:
        return JoinDecision(Verdict.PENDING if on_file == PENDING else Verdict.REQUEST_APPROVAL)
    return JoinDecision.refuse(first)


# --- The matrix over the pure decision ------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    signed_in: bool
    manager: bool = False
    allowed: bool = False  # in allowed_users or holding an invitation: the same to decide_join
    banned: bool = False
    timed_out: bool = False


ROLES = [
    Role("manager", signed_in=True, manager=True),
    Role("allowed_or_invited", signed_in=True, allowed=True),
    Role("other_signed_in", signed_in=True),
    Role("anonymous", signed_in=False),
    Role("banned", signed_in=True, banned=True),
    Role("banned_but_allowed", signed_in=True, allowed=True, banned=True),
    Role("banned_anonymous", signed_in=False, banned=True),
    Role("room_moderator", signed_in=True, manager=True),  # a RoomModerator: a manager to decide_join
    Role("timed_out", signed_in=True, timed_out=True),
    Role("timed_out_but_allowed", signed_in=True, allowed=True, timed_out=True),
    Role("timed_out_anonymous", signed_in=False, timed_out=True),
]

PASSWORDS = {
    "right": PasswordCheck.RIGHT,
    "wrong": PasswordCheck.WRONG,
    "missing": PasswordCheck.NOT_CHECKED,  # what room_join passes when no password was typed
}

# (require_approval, latest request status, approval past the room's approval_ttl)
APPROVALS = {
    "off": (False, None, False),
    "off_after_approved": (False, APPROVED, False),
    "off_after_expired_approval": (False, APPROVED, True),
    "on_no_request": (True, None, False),
    "on_pending": (True, PENDING, False),
    "on_approved": (True, APPROVED, False),
    "on_approval_expired": (True, APPROVED, True),
    "on_denied": (True, DENIED, False),
}
LOCKS = {"unlocked": False, "locked": True}
LINKS = {grant.value: grant for grant in LinkGrant}

MAX_SPECTATORS = 3
# (status, past expires_at, seats taken)
STATES = {
    "live": (Room.Status.ACTIVE, False, 1),
    "paused": (Room.Status.PAUSED, False, 1),
    "full": (Room.Status.ACTIVE, False, MAX_SPECTATORS),
    "expired": (Room.Status.ACTIVE, True, 1),
    "expired_swept": (Room.Status.EXPIRED, True, 1),
    "closed": (Room.Status.CLOSED, False, 1),
}


def make_facts(
    level, role: Role, password, approval, state, *, present=False, lock="unlocked", link="none"
) -> JoinFacts:
    status, expired, seats = STATES[state]
    require_approval, request_status, approval_expired = APPROVALS[approval]
    return JoinFacts(
        access_level=level,
        status=status,
        expired=expired,
        require_approval=require_approval,
        max_spectators=MAX_SPECTATORS,
        seats_taken=seats,
        signed_in=role.signed_in,
        is_manager=role.manager,
        is_allowed=role.allowed,
        is_banned=role.banned,
        already_present=present,
        request_status=request_status,
        password=PASSWORDS[password],
        locked=LOCKS[lock],
        is_timed_out=role.timed_out,
        approval_expired=approval_expired,
        link=LINKS[link],
    )


MATRIX = list(
    itertools.product(AccessLevel.values, ROLES, PASSWORDS, APPROVALS, STATES, ["new", "present"], LOCKS, LINKS)
)


# Parametrized by level x role x room state; inside, every password x approval x presence x
# lock x invite link combination is checked and all mismatches are reported together
# (thousands of separate test items would cost more time than the decision itself).
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
@pytest.mark.parametrize("level", AccessLevel.values)
def test_decide_join_matrix(level, role, state):
    mismatches = []
    for password, approval, presence, lock, link in itertools.product(
        PASSWORDS, APPROVALS, ["new", "present"], LOCKS, LINKS
    ):
        facts = make_facts(level, role, password, approval, state, present=presence == "present", lock=lock, link=link)
        got, want = access.decide_join(facts), expected_decision(facts)
        if got != want:
            mismatches.append(
                f"password={password} approval={approval} {presence} {lock} link={link}: got {got}, want {want}"
            )
    assert not mismatches, "\n".join(mismatches)


def _decide(
    level, role_name, password="missing", approval="off", state="live", present=False, lock="unlocked", link="none"
):
    role = next(r for r in ROLES if r.name == role_name)
    return access.decide_join(make_facts(level, role, password, approval, state, present=present, lock=lock, link=link))


ADMIT = JoinDecision(Verdict.ADMIT)


@pytest.mark.parametrize(
    "case, expected",
    [
        # Hand-checked stories, so the oracle cannot drift along with the code.
        ((PUBLIC, "anonymous"), ADMIT),
        ((PUBLIC, "other_signed_in", "wrong"), ADMIT),
        ((PRIVATE, "other_signed_in", "right", "off", "closed"), JoinDecision.refuse(Refusal.NOT_FOUND)),
        ((PRIVATE, "anonymous", "right", "off", "expired"), JoinDecision.refuse(Refusal.NOT_FOUND)),
        ((PRIVATE, "banned", "right"), JoinDecision.refuse(Refusal.NOT_FOUND)),
        ((PRIVATE, "allowed_or_invited", "missing", "off", "closed"), JoinDecision.refuse(Refusal.CLOSED)),
        ((PRIVATE, "banned_but_allowed"), JoinDecision.refuse(Refusal.BANNED)),
        ((PUBLIC, "manager", "missing", "off", "closed"), JoinDecision.refuse(Refusal.CLOSED)),
        ((PUBLIC, "manager", "missing", "off", "expired_swept"), JoinDecision.refuse(Refusal.EXPIRED)),
        ((PASSWORD, "manager", "missing", "on_no_request", "full"), ADMIT),
        ((INVITE_ONLY, "manager", "missing", "on_denied", "paused"), ADMIT),
        ((PASSWORD, "allowed_or_invited", "missing"), ADMIT),
        ((PASSWORD, "allowed_or_invited", "wrong", "on_no_request"), ADMIT),
        ((PASSWORD, "anonymous", "missing"), JoinDecision.refuse(Refusal.PASSWORD_REQUIRED)),
        ((PASSWORD, "other_signed_in", "wrong"), JoinDecision.refuse(Refusal.WRONG_PASSWORD)),
        ((PASSWORD, "banned", "right"), JoinDecision.refuse(Refusal.BANNED)),
        ((INVITE_ONLY, "anonymous", "right", "off", "full"), JoinDecision.refuse(Refusal.SIGN_IN_REQUIRED)),
        ((INVITE_ONLY, "other_signed_in"), JoinDecision.refuse(Refusal.NOT_INVITED)),
        ((PUBLIC, "anonymous", "missing", "on_no_request"), JoinDecision(Verdict.REQUEST_APPROVAL)),
        ((PUBLIC, "anonymous", "missing", "on_no_request", "full"), JoinDecision(Verdict.REQUEST_APPROVAL)),
        ((PASSWORD, "other_signed_in", "missing", "on_pending"), JoinDecision(Verdict.PENDING)),
        ((PASSWORD, "other_signed_in", "missing", "on_approved"), ADMIT),
        ((PASSWORD, "other_signed_in", "missing", "on_approved", "full"), JoinDecision.refuse(Refusal.FULL)),
        ((PASSWORD, "other_signed_in", "right", "on_denied"), JoinDecision.refuse(Refusal.DENIED)),
        ((PASSWORD, "other_signed_in", "wrong", "on_denied"), JoinDecision.refuse(Refusal.WRONG_PASSWORD)),
        ((PUBLIC, "other_signed_in", "missing", "off", "full"), JoinDecision.refuse(Refusal.FULL)),
        ((INVITE_ONLY, "allowed_or_invited", "missing", "on_no_request", "full"), JoinDecision.refuse(Refusal.FULL)),
        # Room moderators, locks, timeouts, expiring approvals and invite links.
        ((PASSWORD, "room_moderator", "missing", "on_denied", "full", False, "locked"), ADMIT),
        ((PUBLIC, "room_moderator", "missing", "off", "closed"), JoinDecision.refuse(Refusal.CLOSED)),
        ((PUBLIC, "anonymous", "missing", "off", "live", False, "locked"), JoinDecision.refuse(Refusal.LOCKED)),
        ((PUBLIC, "anonymous", "missing", "off", "live", True, "locked"), ADMIT),
        (
            (PUBLIC, "allowed_or_invited", "missing", "off", "live", False, "locked"),
            JoinDecision.refuse(Refusal.LOCKED),
        ),
        (
            (PUBLIC, "other_signed_in", "missing", "on_approved", "live", False, "locked"),
            JoinDecision.refuse(Refusal.LOCKED),
        ),
        ((PRIVATE, "anonymous", "missing", "off", "live", False, "locked"), JoinDecision.refuse(Refusal.NOT_FOUND)),
        ((PUBLIC, "timed_out"), JoinDecision.refuse(Refusal.TIMED_OUT)),
        ((PUBLIC, "timed_out", "missing", "off", "live", False, "locked"), JoinDecision.refuse(Refusal.TIMED_OUT)),
        ((PUBLIC, "timed_out_anonymous", "missing", "off", "live", True), JoinDecision.refuse(Refusal.TIMED_OUT)),
        ((PRIVATE, "timed_out_but_allowed"), JoinDecision.refuse(Refusal.TIMED_OUT)),
        ((PUBLIC, "other_signed_in", "missing", "on_approval_expired"), JoinDecision(Verdict.REQUEST_APPROVAL)),
        (
            (PASSWORD, "other_signed_in", "missing", "on_approval_expired"),
            JoinDecision.refuse(Refusal.PASSWORD_REQUIRED),
        ),
        (
            (PASSWORD, "other_signed_in", "missing", "off_after_expired_approval"),
            JoinDecision.refuse(Refusal.PASSWORD_REQUIRED),
        ),
        ((PUBLIC, "other_signed_in", "missing", "on_approval_expired", "live", True), ADMIT),
        ((PASSWORD, "anonymous", "missing", "off", "live", False, "unlocked", "entry_with_password"), ADMIT),
        (
            (PASSWORD, "anonymous", "missing", "off", "live", False, "unlocked", "entry"),
            JoinDecision.refuse(Refusal.PASSWORD_REQUIRED),
        ),
        (
            (PASSWORD, "anonymous", "missing", "on_no_request", "live", False, "unlocked", "entry_with_password"),
            JoinDecision(Verdict.REQUEST_APPROVAL),
        ),
        ((INVITE_ONLY, "other_signed_in", "missing", "off", "live", False, "unlocked", "entry"), ADMIT),
        (
            (INVITE_ONLY, "anonymous", "missing", "off", "live", False, "unlocked", "entry"),
            JoinDecision.refuse(Refusal.SIGN_IN_REQUIRED),
        ),
        (
            (PRIVATE, "other_signed_in", "missing", "off", "live", False, "unlocked", "entry"),
            JoinDecision.refuse(Refusal.NOT_FOUND),
        ),
        (
            (PUBLIC, "anonymous", "missing", "off", "live", False, "unlocked", "invalid"),
            JoinDecision.refuse(Refusal.LINK_INVALID),
        ),
        (
            (PUBLIC, "other_signed_in", "missing", "off", "live", False, "unlocked", "not_yours"),
            JoinDecision.refuse(Refusal.LINK_NOT_YOURS),
        ),
        ((PUBLIC, "manager", "missing", "off", "live", False, "unlocked", "invalid"), ADMIT),
        (
            (PUBLIC, "other_signed_in", "missing", "off", "live", False, "locked", "entry_with_password"),
            JoinDecision.refuse(Refusal.LOCKED),
        ),
        (
            (PUBLIC, "other_signed_in", "missing", "off", "full", False, "unlocked", "entry"),
            JoinDecision.refuse(Refusal.FULL),
        ),
    ],
    ids=lambda value: "-".join(map(str, value)) if isinstance(value, tuple) else None,
)
def test_decide_join_stories(case, expected):
    assert _decide(*case) == expected


@pytest.mark.parametrize("level", AccessLevel.values)
def test_present_visitor_keeps_seat_in_full_room_and_skips_password_and_approval(level):
    # Someone in allowed_users who is present (e.g. admitted before the room filled up).
    decision = _decide(level, "allowed_or_invited", "wrong", "on_no_request", "full", present=True)
    assert decision == ADMIT
    if level in (PUBLIC, PASSWORD):
        assert _decide(level, "anonymous", "missing", "on_no_request", "full", present=True) == ADMIT


def test_typed_but_empty_password_counts_as_missing():
    facts = replace(make_facts(PASSWORD, ROLES[2], "missing", "off", "live"), password=PasswordCheck.MISSING)
    assert access.decide_join(facts) == JoinDecision.refuse(Refusal.PASSWORD_REQUIRED)


def test_matrix_covers_every_refusal_and_verdict():
    outcomes = {expected_decision(make_facts(*c[:5], present=c[5] == "present", lock=c[6], link=c[7])) for c in MATRIX}
    assert {d.refusal for d in outcomes if d.refusal} == set(Refusal)
    assert {d.verdict for d in outcomes} == set(Verdict)


# --- Property tests -------------------------------------------------------------------------


@st.composite
def join_facts_strategy(draw, **fixed):
    def pick(name, strategy):
        return fixed[name] if name in fixed else draw(strategy)

    signed_in = pick("signed_in", st.booleans())
    return JoinFacts(
        access_level=pick("access_level", st.sampled_from(AccessLevel.values)),
        status=pick("status", st.sampled_from(Room.Status.values)),
        expired=pick("expired", st.booleans()),
        require_approval=pick("require_approval", st.booleans()),
        max_spectators=pick("max_spectators", st.integers(1, 5)),
        seats_taken=pick("seats_taken", st.integers(0, 7)),
        signed_in=signed_in,
        # Only signed-in users manage rooms or are named in allowed_users/invitations.
        is_manager=pick("is_manager", st.booleans() if signed_in else st.just(False)),
        is_allowed=pick("is_allowed", st.booleans() if signed_in else st.just(False)),
        is_banned=pick("is_banned", st.booleans()),
        already_present=pick("already_present", st.booleans()),
        request_status=pick("request_status", st.sampled_from([None, PENDING, APPROVED, DENIED])),
        password=pick("password", st.sampled_from(list(PasswordCheck))),
        locked=pick("locked", st.booleans()),
        is_timed_out=pick("is_timed_out", st.booleans()),
        approval_expired=pick("approval_expired", st.booleans()),
        link=pick("link", st.sampled_from(list(LinkGrant))),
    )


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIVE = [Room.Status.ACTIVE, Room.Status.PAUSED]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(join_facts_strategy())
def test_decide_join_agrees_with_the_oracle_on_any_facts(facts):
    assert access.decide_join(facts) == expected_decision(facts)


@PROPERTY_SETTINGS
@given(st.data(), st.sampled_from(LIVE))
def test_manager_on_live_room_is_always_admitted(data, status):
    facts = data.draw(join_facts_strategy(signed_in=True, is_manager=True, status=status, expired=False))
    assert access.decide_join(facts) == ADMIT


@PROPERTY_SETTINGS
@given(join_facts_strategy(status=Room.Status.CLOSED))
def test_closed_room_never_admits(facts):
    decision = access.decide_join(facts)
    assert decision.verdict == Verdict.REFUSE
    assert decision.refusal in (Refusal.CLOSED, Refusal.NOT_FOUND)


@PROPERTY_SETTINGS
@given(join_facts_strategy(expired=True))
def test_expired_room_never_admits(facts):
    decision = access.decide_join(facts)
    assert decision.verdict == Verdict.REFUSE
    assert decision.refusal in (Refusal.EXPIRED, Refusal.CLOSED, Refusal.NOT_FOUND)


@PROPERTY_SETTINGS
@given(st.data())
def test_private_room_never_reveals_itself_to_outsiders(data):
    outsider = {"access_level": PRIVATE, "is_manager": False, "is_allowed": False}
    first = data.draw(join_facts_strategy(**outsider))
    second = data.draw(join_facts_strategy(**outsider))
    # Whatever else differs (state, ban, seats, password, requests), the answer is the same.
    assert access.decide_join(first) == access.decide_join(second) == JoinDecision.refuse(Refusal.NOT_FOUND)


@PROPERTY_SETTINGS
@given(join_facts_strategy(already_present=True))
def test_present_visitor_is_never_refused_for_a_full_room(facts):
    assert access.decide_join(facts).refusal != Refusal.FULL


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_refusal_is_given_exactly_when_refused(facts):
    decision = access.decide_join(facts)
    assert (decision.refusal is not None) == (decision.verdict == Verdict.REFUSE)


@PROPERTY_SETTINGS
@given(join_facts_strategy(is_banned=True, is_manager=False))
def test_banned_visitor_never_gets_in_or_in_line(facts):
    decision = access.decide_join(facts)
    assert decision.verdict == Verdict.REFUSE


@PROPERTY_SETTINGS
@given(join_facts_strategy(signed_in=False), st.sampled_from([INVITE_ONLY, PRIVATE]))
def test_anonymous_visitor_never_enters_invite_only_or_private_rooms(facts, level):
    decision = access.decide_join(replace(facts, access_level=level))
    assert decision.verdict == Verdict.REFUSE
    if level == PRIVATE:
        assert decision.refusal == Refusal.NOT_FOUND
    else:
        assert decision.refusal in (
            Refusal.SIGN_IN_REQUIRED,
            Refusal.CLOSED,
            Refusal.EXPIRED,
            Refusal.BANNED,
            Refusal.TIMED_OUT,
            Refusal.LINK_INVALID,
            Refusal.LINK_NOT_YOURS,
            Refusal.LOCKED,
        )


@PROPERTY_SETTINGS
@given(join_facts_strategy(already_present=False, is_manager=False))
def test_admitted_newcomer_always_had_a_free_seat(facts):
    if access.decide_join(facts) == ADMIT:
        assert facts.seats_taken < facts.max_spectators


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_one_more_taken_seat_never_lets_anyone_in(facts):
    before = access.decide_join(facts)
    after = access.decide_join(replace(facts, seats_taken=facts.seats_taken + 1))
    if before.verdict != Verdict.ADMIT:
        assert after.verdict != Verdict.ADMIT


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_password_matters_only_where_a_password_is_needed(facts):
    decisions = {access.decide_join(replace(facts, password=check)) for check in PasswordCheck}
    if not access.needs_password(facts):
        assert len(decisions) == 1
    if facts.access_level != PASSWORD:
        assert not access.needs_password(facts)


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_right_password_is_never_worse_than_a_wrong_one(facts):
    wrong = access.decide_join(replace(facts, password=PasswordCheck.WRONG))
    right = access.decide_join(replace(facts, password=PasswordCheck.RIGHT))
    if wrong.verdict != Verdict.REFUSE:
        assert right == wrong
    assert right.refusal not in (Refusal.WRONG_PASSWORD, Refusal.PASSWORD_REQUIRED)


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_a_request_is_filed_only_when_approval_is_on_and_none_is_on_file(facts):
    if access.decide_join(facts).verdict == Verdict.REQUEST_APPROVAL:
        assert facts.require_approval
        if facts.approval_expired:
            assert facts.request_status in (None, APPROVED)
        else:
            assert facts.request_status not in (PENDING, APPROVED, DENIED)
        assert not (facts.is_manager or facts.is_allowed or facts.already_present)


@PROPERTY_SETTINGS
@given(join_facts_strategy(is_timed_out=True, is_manager=False))
def test_timed_out_visitor_never_gets_in_or_in_line(facts):
    assert access.decide_join(facts).verdict == Verdict.REFUSE


@PROPERTY_SETTINGS
@given(join_facts_strategy(locked=True, is_manager=False, already_present=False))
def test_locked_room_admits_nobody_new_but_managers(facts):
    assert access.decide_join(facts).verdict == Verdict.REFUSE


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_unlocking_never_keeps_anyone_out_who_the_lock_let_in(facts):
    locked = access.decide_join(replace(facts, locked=True))
    if locked.verdict != Verdict.REFUSE:
        assert access.decide_join(replace(facts, locked=False)) == locked


@PROPERTY_SETTINGS
@given(join_facts_strategy(is_manager=False), st.sampled_from([LinkGrant.INVALID, LinkGrant.NOT_YOURS]))
def test_a_bad_invite_link_never_lets_anyone_in(facts, link):
    assert access.decide_join(replace(facts, link=link)).verdict == Verdict.REFUSE


@PROPERTY_SETTINGS
@given(join_facts_strategy(link=LinkGrant.ENTRY_WITH_PASSWORD))
def test_a_link_with_the_password_is_never_asked_for_it(facts):
    assert access.decide_join(facts).refusal not in (Refusal.PASSWORD_REQUIRED, Refusal.WRONG_PASSWORD)


@PROPERTY_SETTINGS
@given(join_facts_strategy())
def test_a_good_invite_link_is_never_worse_than_none(facts):
    none = access.decide_join(replace(facts, link=LinkGrant.NONE))
    for link in (LinkGrant.ENTRY, LinkGrant.ENTRY_WITH_PASSWORD):
        if none.verdict == Verdict.ADMIT:
            assert access.decide_join(replace(facts, link=link)).verdict == Verdict.ADMIT


@PROPERTY_SETTINGS
@given(join_facts_strategy(request_status=APPROVED, approval_expired=True, already_present=False))
def test_an_expired_approval_is_like_no_request(facts):
    assert access.decide_join(facts) == access.decide_join(replace(facts, request_status=None, approval_expired=False))


# --- Predicates and fetchers against the database -------------------------------------------


@pytest.fixture
def people(make_user, owner):
    """A cast: the owner, a staff moderator, an allowed user, an invited user, a stranger."""
    return {
        "owner": owner,
        "staff": make_user("moderator", staff=True),
        "allowed": make_user("allowed"),
        "invited": make_user("invited"),
        "stranger": make_user("stranger"),
    }


@pytest.fixture
def private_room(make_room, people, owner):
    room = make_room(access_level=PRIVATE, allowed_users=["allowed"])
    services.invitation_create(room=room, username="invited", actor=owner)
    return room


def test_can_manage_room(private_room, people, make_user):
    from django.contrib.auth.models import AnonymousUser

    assert access.can_manage_room(people["owner"], private_room)
    assert access.can_manage_room(people["staff"], private_room)
    for name in ("allowed", "invited", "stranger"):
        assert not access.can_manage_room(people[name], private_room), name
    assert not access.can_manage_room(None, private_room)
    assert not access.can_manage_room(AnonymousUser(), private_room)
    inactive_staff = make_user("retired", staff=True)
    inactive_staff.is_active = False
    inactive_staff.save()
    assert not access.can_manage_room(inactive_staff, private_room)


def test_training_session_owner_manages_a_room_staff_created_for_them(people, training_session):
    room, _ = services.room_create(creator=people["staff"], training_session=training_session)
    assert room.creator == people["staff"]
    assert access.can_manage_room(people["owner"], room)
    assert access.can_manage_room(people["staff"], room)
    assert not access.can_manage_room(people["stranger"], room)


def test_can_manage_room_and_training_session_refuse_other_owners(make_user, make_room):
    from metrics.services import training_session_create

    room = make_room()
    rival = make_user("rival")
    rival_session, _ = training_session_create(owner=rival, id="rival-run")
    assert not access.can_manage_room(rival, room)
    assert access.can_manage_training_session(rival, rival_session)
    assert not access.can_manage_training_session(room.creator, rival_session)


def test_can_see_room(private_room, people, make_room):
    from django.contrib.auth.models import AnonymousUser

    for name in ("owner", "staff", "allowed", "invited"):
        assert access.can_see_room(people[name], private_room), name
    assert not access.can_see_room(people["stranger"], private_room)
    assert not access.can_see_room(AnonymousUser(), private_room)
    assert not access.can_see_room(None, private_room)
    for level in (PUBLIC, PASSWORD, INVITE_ONLY):
        room = make_room(access_level=level)
        assert access.can_see_room(people["stranger"], room), level
        assert access.can_see_room(AnonymousUser(), room), level


def test_revoked_invitation_hides_a_private_room_again(private_room, people, owner):
    invitation = private_room.invitations.get(user=people["invited"])
    services.invitation_revoke(invitation=invitation, actor=owner)
    assert not access.can_see_room(people["invited"], private_room)
    with pytest.raises(RoomNotFound):
        access.room_get_visible(private_room.code, people["invited"])


def test_can_act_as(people):
    from django.contrib.auth.models import AnonymousUser

    stranger = people["stranger"]
    assert access.can_act_as(stranger, None)
    assert access.can_act_as(stranger, "")
    assert access.can_act_as(stranger, "stranger")
    assert not access.can_act_as(stranger, "owner")
    assert access.can_act_as(people["staff"], "owner")
    assert not access.can_act_as(AnonymousUser(), "owner")
    assert not access.can_act_as(None, "owner")


def test_room_get_visible_by_code_any_case_and_by_uuid(make_room, people):
    room = make_room()
    for ref in (room.code, room.code.lower(), f"  {room.code.swapcase()} ", str(room.id), str(room.id).upper()):
        assert access.room_get_visible(ref, people["stranger"]) == room, ref
    assert access.room_get_visible(room.code, None) == room


def test_room_get_visible_raises_for_missing_rooms(make_room, people):
    import uuid

    make_room(custom_code="ABCDEF")
    for ref in ("ABCDEG", "", "not a code", str(uuid.uuid4())):
        with pytest.raises(RoomNotFound) as excinfo:
            access.room_get_visible(ref, people["owner"])
        assert excinfo.value.refusal == Refusal.NOT_FOUND


def test_room_get_visible_prefers_the_live_room_with_a_reused_code(make_room, owner, people):
    old = make_room(custom_code="QWERTY")
    services.room_close(room=old, actor=owner)
    assert access.room_get_visible("qwerty", people["stranger"]) == old  # most recent, though closed
    new = make_room(custom_code="QWERTY")
    assert access.room_get_visible("qwerty", people["stranger"]) == new
    assert access.room_get_visible(str(old.id), people["stranger"]) == old


def test_private_room_is_missing_to_strangers_by_code_and_by_uuid(private_room, people):
    from django.contrib.auth.models import AnonymousUser

    for user in (people["stranger"], AnonymousUser(), None):
        for ref in (private_room.code, str(private_room.id)):
            with pytest.raises(RoomNotFound):
                access.room_get_visible(ref, user)
            with pytest.raises(RoomNotFound):
                access.room_get_managed(ref, user)
    for name in ("owner", "staff", "allowed", "invited"):
        assert access.room_get_visible(private_room.code.lower(), people[name]) == private_room


def test_room_get_managed(make_room, private_room, people):
    public_room = make_room()
    assert access.room_get_managed(public_room.code, people["owner"]) == public_room
    assert access.room_get_managed(public_room.code.lower(), people["staff"]) == public_room
    with pytest.raises(PermissionDenied):
        access.room_get_managed(public_room.code, people["stranger"])
    # Allowed users can see a private room, so they hear "forbidden", not "missing".
    for name in ("allowed", "invited"):
        with pytest.raises(PermissionDenied):
            access.room_get_managed(private_room.code, people[name])


def test_training_session_get_managed(training_session, people):
    from metrics.models import TrainingSession

    assert access.training_session_get_managed(training_session.id, people["owner"]) == training_session
    assert access.training_session_get_managed(training_session.id, people["staff"]) == training_session
    with pytest.raises(TrainingSession.DoesNotExist):
        access.training_session_get_managed(training_session.id, people["stranger"])
    with pytest.raises(TrainingSession.DoesNotExist):
        access.training_session_get_managed("no-such-run", people["owner"])


def test_can_ingest_only_into_open_sessions(training_session, people):
    from metrics.services import training_session_close

    assert access.can_ingest(people["owner"], training_session)
    assert not access.can_ingest(people["stranger"], training_session)
    training_session_close(training_session=training_session, actor=people["owner"])
    assert not access.can_ingest(people["owner"], training_session)


def test_can_view_training_session(make_room, people, owner, training_session):
    room = make_room(access_level=PRIVATE, allowed_users=["allowed"])
    assert access.can_view_training_session(Visitor(user=owner), training_session)
    assert access.can_view_training_session(Visitor(user=people["staff"]), training_session)
    allowed = Visitor(user=people["allowed"])
    assert not access.can_view_training_session(allowed, training_session)  # allowed, but not admitted yet
    seat = services.room_join(room=room, visitor=allowed).spectator
    assert access.can_view_training_session(allowed, training_session)
    assert not access.can_view_training_session(Visitor(user=people["stranger"]), training_session)
    assert not access.can_view_training_session(Visitor(), training_session)

    public = make_room()
    guest = Visitor(anon_key=services.anon_key_for("guest"))
    assert not access.can_view_training_session(guest, training_session)
    services.room_join(room=public, visitor=guest)
    assert access.can_view_training_session(guest, training_session)
    assert not access.can_view_training_session(Visitor(anon_key=services.anon_key_for("x")), training_session)

    services.room_leave(spectator=seat)
    assert not access.can_view_training_session(allowed, training_session)
    services.room_close(room=public, actor=owner)
    assert not access.can_view_training_session(guest, training_session)


def test_training_session_get_viewable(make_room, people, owner, training_session):
    from metrics.models import TrainingSession

    assert access.training_session_get_viewable(training_session.id, Visitor(user=owner)) == training_session
    assert access.training_session_get_viewable(training_session.id, Visitor(user=people["staff"])) == training_session
    for visitor, training_session_id in (
        (Visitor(user=people["stranger"]), training_session.id),
        (Visitor(), training_session.id),
        (Visitor(user=owner), "no-such-run"),
    ):
        with pytest.raises(TrainingSession.DoesNotExist):
            access.training_session_get_viewable(training_session_id, visitor)
    services.room_join(room=make_room(), visitor=Visitor(user=people["stranger"]))
    assert access.training_session_get_viewable(training_session.id, Visitor(user=people["stranger"]))


def test_training_session_list_viewable(make_room, people, owner, training_session):
    from metrics.services import training_session_create

    newer, _ = training_session_create(owner=owner, id="newer-run")
    elsewhere, _ = training_session_create(owner=people["stranger"], id="strangers-run")
    room = make_room(creator=people["stranger"], training_session=elsewhere)
    assert access.training_session_list_viewable(Visitor(user=owner)) == [newer, training_session]
    assert access.training_session_list_viewable(Visitor(user=people["allowed"])) == []
    assert access.training_session_list_viewable(Visitor()) == []
    # Watching a room adds its session after one's own; leaving takes it away again.
    seat = services.room_join(room=room, visitor=Visitor(user=owner)).spectator
    assert access.training_session_list_viewable(Visitor(user=owner)) == [newer, training_session, elsewhere]
    guest = Visitor(anon_key=services.anon_key_for("guest"))
    services.room_join(room=room, visitor=guest)
    assert access.training_session_list_viewable(guest) == [elsewhere]
    assert all(
        access.can_view_training_session(guest, session) for session in access.training_session_list_viewable(guest)
    )
    services.room_leave(spectator=seat)
    assert access.training_session_list_viewable(Visitor(user=owner)) == [newer, training_session]


def test_join_facts_reads_the_database(make_room, people, owner):
    room = make_room(access_level=PASSWORD, require_approval=True, max_spectators=2)
    services.room_join(room=room, visitor=Visitor(user=owner))
    services.room_join(room=room, visitor=Visitor(user=people["staff"]))
    services.room_join(room=room, visitor=Visitor(user=people["stranger"]), password=room.plain_password)
    facts = access.join_facts(room, Visitor(user=people["stranger"]))
    assert facts == JoinFacts(
        access_level=PASSWORD,
        status=Room.Status.ACTIVE,
        expired=False,
        require_approval=True,
        max_spectators=2,
        seats_taken=0,  # managers present, but they take no seats
        signed_in=True,
        is_manager=False,
        is_allowed=False,
        is_banned=False,
        already_present=False,
        request_status=PENDING,
    )
    assert access.join_facts(room, Visitor(user=owner)).already_present
    assert access.join_facts(room, Visitor(user=owner)).is_manager
    anonymous = access.join_facts(room, Visitor(anon_key=services.anon_key_for("secret")))
    assert not anonymous.signed_in and anonymous.request_status is None


def test_seats_taken_counts_present_non_managers_only(make_room, people, owner, make_user):
    room = make_room(max_spectators=5)
    for user in (owner, people["staff"], people["allowed"], people["stranger"]):
        services.room_join(room=room, visitor=Visitor(user=user))
    services.room_join(room=room, visitor=Visitor(anon_key=services.anon_key_for("guest")))
    assert access.seats_taken(room) == 3
    services.room_leave(spectator=access.current_spectator(room, Visitor(user=people["stranger"])))
    assert access.seats_taken(room) == 2


def test_password_check(make_room):
    room = make_room(access_level=PASSWORD, password="s3cret-pw")
    assert access.password_check(room, "s3cret-pw") == PasswordCheck.RIGHT
    assert access.password_check(room, "S3CRET-PW") == PasswordCheck.WRONG
    assert access.password_check(room, "") == PasswordCheck.MISSING
    assert access.password_check(room, None) == PasswordCheck.MISSING


# --- The same roles against the database: services.room_join -----------------------------

RIGHT_PASSWORD = "right-password"
DB_ROLES = ["creator", "staff", "allowed", "invited", "other", "anonymous", "banned"]
DB_SCENARIOS = {
    # name: (state, require_approval, password typed)
    "live-right_password": ("live", False, "right"),
    "live-wrong_password": ("live", False, "wrong"),
    "live-no_password": ("live", False, "missing"),
    "approval-right_password": ("live", True, "right"),
    "approval-no_password": ("live", True, "missing"),
    "full": ("full", False, "right"),
    "closed": ("closed", False, "right"),
    "expired": ("expired", False, "right"),
    "expired_swept": ("expired_swept", False, "right"),
}
TYPED = {"right": RIGHT_PASSWORD, "wrong": "not-the-password", "missing": None}


def _visitor_for(role, make_user, owner):
    """The visitor for a role and the role as decide_join sees it."""
    if role == "creator":
        return Visitor(user=owner), Role(role, signed_in=True, manager=True)
    if role == "staff":
        return Visitor(user=make_user("mod", staff=True)), Role(role, signed_in=True, manager=True)
    if role in ("allowed", "invited"):
        return Visitor(user=make_user(role)), Role(role, signed_in=True, allowed=True)
    if role == "anonymous":
        return Visitor(anon_key=services.anon_key_for("browser-secret")), Role(role, signed_in=False)
    if role == "banned":
        return Visitor(user=make_user("banned")), Role(role, signed_in=True, banned=True)
    return Visitor(user=make_user("other")), Role(role, signed_in=True)


def _outcome(room, visitor, password):
    try:
        result = services.room_join(room=room, visitor=visitor, password=password, client="test-client")
    except AccessRefused as refused:
        return refused.refusal
    return result.status


def _expected_outcome(decision: JoinDecision):
    if decision.verdict == Verdict.REFUSE:
        return decision.refusal
    return "approved" if decision.verdict == Verdict.ADMIT else "pending_approval"


@pytest.mark.parametrize("scenario", DB_SCENARIOS)
@pytest.mark.parametrize("role", DB_ROLES)
@pytest.mark.parametrize("level", AccessLevel.values)
def test_room_join_matrix_on_the_database(level, role, scenario, make_room, make_user, owner):
    state, require_approval, typed = DB_SCENARIOS[scenario]
    visitor, role_facts = _visitor_for(role, make_user, owner)
    seat_holders = [make_user(f"seat{n}") for n in range(2)]
    room = make_room(
        access_level=level,
        password=RIGHT_PASSWORD if level == PASSWORD else None,
        max_spectators=2,
        require_approval=require_approval,
        allowed_users=[u.username for u in seat_holders] + (["allowed"] if role == "allowed" else []),
        blocked_users=["banned"] if role == "banned" else [],
    )
    if role == "invited":
        services.invitation_create(room=room, username="invited", actor=owner)
    seats = 0
    if state == "full":
        for holder in seat_holders:
            assert services.room_join(room=room, visitor=Visitor(user=holder)).status == "approved"
        seats = 2
    elif state == "closed":
        services.room_close(room=room, actor=owner)
    elif state in ("expired", "expired_swept"):
        Room.objects.filter(pk=room.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        if state == "expired_swept":
            assert services.rooms_expire() == 1
    room.refresh_from_db()

    status, expired, _ = STATES[state]
    expected = _expected_outcome(
        expected_decision(
            JoinFacts(
                access_level=level,
                status=status,
                expired=expired,
                require_approval=require_approval,
                max_spectators=2,
                seats_taken=seats,
                signed_in=role_facts.signed_in,
                is_manager=role_facts.manager,
                is_allowed=role_facts.allowed,
                is_banned=role_facts.banned,
                already_present=False,
                request_status=None,
                password=PASSWORDS[typed],
            )
        )
    )
    spectators_before = Spectator.objects.filter(room=room).count()

    assert _outcome(room, visitor, TYPED[typed]) == expected

    present = access.current_spectator(room, visitor)
    pending = access.latest_join_request(room, visitor)
    if expected == "approved":
        assert present is not None and present.is_present
        assert access.seats_taken(room) == seats + (0 if role_facts.manager else 1)
        assert pending is None
    elif expected == "pending_approval":
        assert present is None
        assert pending is not None and pending.status == PENDING
    else:
        assert present is None and pending is None
        assert Spectator.objects.filter(room=room).count() == spectators_before


APPROVAL_ROLES = ["invited", "other", "anonymous"]


@pytest.mark.parametrize("decision", ["pending", "approved", "denied"])
@pytest.mark.parametrize("role", APPROVAL_ROLES)
@pytest.mark.parametrize("level", AccessLevel.values)
def test_room_join_with_approval_on_the_database(level, role, decision, make_room, make_user, owner):
    """Join once (filing a request where needed), let the owner decide, then come back without a password."""
    visitor, role_facts = _visitor_for(role, make_user, owner)
    room = make_room(access_level=level, password=RIGHT_PASSWORD if level == PASSWORD else None, require_approval=True)
    if role == "invited":
        services.invitation_create(room=room, username="invited", actor=owner)
    first = _outcome(room, visitor, RIGHT_PASSWORD)
    join_request = access.latest_join_request(room, visitor)
    if join_request is not None and decision != "pending":
        services.join_request_decide(join_request=join_request, approver=owner, approved=decision == "approved")
    if first == "approved":
        services.room_leave(spectator=access.current_spectator(room, visitor))

    facts = JoinFacts(
        access_level=level,
        status=Room.Status.ACTIVE,
        expired=False,
        require_approval=True,
        max_spectators=room.max_spectators,
        seats_taken=0,
        signed_in=role_facts.signed_in,
        is_manager=False,
        is_allowed=role_facts.allowed,
        is_banned=False,
        already_present=False,
        request_status=join_request.status if join_request else None,
    )
    assert access.join_facts(room, visitor) == facts
    assert _outcome(room, visitor, None) == _expected_outcome(expected_decision(facts))
    if role == "invited":
        assert join_request is None  # invited users never wait
