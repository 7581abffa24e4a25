"""The comparison page: two to four training runs side by side.

The page renders who and what is compared (names escaped by the templates); its script
(``static/spectator/compare.js``) draws the overlaid graphs from the history API and the
summary table from the comparison API, which ask ``rooms.access`` again themselves.
"""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from metrics.models import TrainingSession
from metrics.selectors import COMPARISON_MAX_SESSIONS, COMPARISON_MIN_SESSIONS, SUMMARY_RECENT_EPISODES
from rooms import access
from rooms.views import page_visitor

# Polling interval of the live runs in a comparison (compare.js says why it polls).
POLL_SECONDS = 3
SHOWN_ID_CHARS = 64


def comparison_ids(request) -> list[str]:
    """The ids in ``?sessions=a,b`` or ``?sessions=a&sessions=b`` (the picker's checkboxes), without repeats."""
    names = (name.strip() for value in request.GET.getlist("sessions") for name in value.split(","))
    return list(dict.fromkeys(name for name in names if name))


def _pick(request, visitor, *, chosen: list[TrainingSession], ticked=(), error: str = "", status: int = 200):
    """The picker: the runs this visitor may read, the chosen ones first; the chosen and ``ticked`` ids ticked."""
    candidates = list(chosen)
    chosen_ids = {session.pk for session in chosen}
    candidates += [
        session for session in access.training_session_list_viewable(visitor) if session.pk not in chosen_ids
    ]
    context = {
        "candidates": candidates,
        "ticked_ids": chosen_ids | set(ticked),
        "error": error,
        "min_runs": COMPARISON_MIN_SESSIONS,
        "max_runs": COMPARISON_MAX_SESSIONS,
    }
    return render(request, "rooms/compare_pick.html", context, status=status)


@require_GET
def comparison_page(request):
    """Two to four runs the visitor may read, side by side; fewer: the picker.

    A run the visitor may not read looks missing (404), whether or not it exists.
    """
    visitor = page_visitor(request)
    ids = comparison_ids(request)
    if len(ids) > COMPARISON_MAX_SESSIONS:
        error = f"Compare at most {COMPARISON_MAX_SESSIONS} runs at once (you picked {len(ids)})."
        return _pick(request, visitor, chosen=[], ticked=ids, error=error, status=400)
    chosen = []
    for training_session_id in ids:
        try:
            chosen.append(access.training_session_get_viewable(training_session_id, visitor))
        except TrainingSession.DoesNotExist:
            error = f"No training session “{training_session_id[:SHOWN_ID_CHARS]}” that you can watch."
            return _pick(request, visitor, chosen=chosen, error=error, status=404)
    if len(chosen) < COMPARISON_MIN_SESSIONS:
        return _pick(request, visitor, chosen=chosen)
    runs = [
        {
            "id": session.pk,
            "label": session.name or session.pk,
            "name": session.name,
            "algorithm": session.algorithm,
            "status": session.status,
            "owner": session.owner.get_username(),
            "extra_keys": list(session.extra_keys or []),
            "history_url": reverse("metric-series", kwargs={"training_session_id": session.pk}),
            "summary_url": reverse("training-session-summary", kwargs={"training_session_id": session.pk}),
        }
        for session in chosen
    ]
    compare_data = {
        "runs": runs,
        "comparison_url": reverse("training-session-comparison"),
        "recent_episodes": SUMMARY_RECENT_EPISODES,
        "poll_ms": POLL_SECONDS * 1000,
    }
    context = {"runs": list(zip(chosen, range(len(chosen)), strict=True)), "compare_data": compare_data}
    return render(request, "rooms/compare.html", context)
