"""Training-session stream events: group names, builders, publishing once per message.

A training session's stream (metrics, graph points, decisions, frames, status) goes to its
group; each server process's room hub holds one membership per session it shows and writes
the same pre-serialized text (or bytes) to every local spectator.
"""

from __future__ import annotations

import logging

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from metrics.graphs import graph_config, graph_points
from metrics.ingest import DECISION_FIELDS
from metrics.models import MetricPoint
from spectator_site.observability import channel_layer_publish_failed

logger = logging.getLogger(__name__)

METRICS_DATA_FIELDS = MetricPoint.METRICS_DATA_FIELDS


def session_group_name(training_session_id: str) -> str:
    """The channel-layer group of a training session's stream, built from its id only."""
    return f"ts.{training_session_id}"


def metrics_data(point: dict) -> dict:
    """A point's MetricsData as spectators see it (seed fields, extra, decision fields)."""
    data = {name: point.get(name) for name in METRICS_DATA_FIELDS}
    # Custom scalars and decision values are floats by validation; read back from
    # PostgreSQL's jsonb a huge one comes as an integer (1e308 as 1 and 308 zeros).
    data["extra"] = {key: float(value) for key, value in (point.get("extra") or {}).items()}
    decision = decision_floats(point.get("decision")) or {}
    for name in DECISION_FIELDS:
        data[name] = decision.get(name)
    data["stream"] = point.get("stream")
    data["seq"] = point.get("seq")
    return data


def decision_floats(decision: dict | None) -> dict | None:
    """A stored decision with its numbers as floats again (the selected action keeps its type)."""
    if not decision:
        return decision
    out = dict(decision)
    for name in ("action_probabilities", "state_values", "q_values"):
        value = out.get(name)
        if isinstance(value, dict):
            out[name] = {key: float(item) for key, item in value.items()}
        elif isinstance(value, list):
            out[name] = [float(item) for item in value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def training_metrics(point: dict) -> dict:
    return {"type": "training_metrics", "data": metrics_data(point)}


def graph_update(point: dict) -> dict:
    return {"type": "graph_update", "graphs": graph_points(point)}


def bot_decision(decision: dict) -> dict:
    return {
        "type": "bot_decision",
        "action_probabilities": decision.get("action_probabilities"),
        "selected_action": decision.get("selected_action"),
        "state_values": decision.get("state_values"),
        "q_values": decision.get("q_values"),
        "episode": decision.get("episode"),
        "step": decision.get("step"),
        "timestamp": decision.get("timestamp"),
    }


def graph_config_message(extra_keys) -> dict:
    return {"type": "graph_config", "graphs": graph_config(extra_keys)}


def training_status(training_session, **notes) -> dict:
    return {
        "type": "training_status",
        "training_session_id": training_session.pk,
        "status": training_session.status,
        "algorithm": training_session.algorithm,
        "total_episodes": training_session.total_episodes,
        **notes,
    }


def _dumps(message: dict) -> str:
    # Every stream message is serialized here, once; orjson is ~5x faster than json here.
    return orjson.dumps(message).decode()


# Kinds tell the hub how to apply a spectator's speed: metric points are never dropped,
# decisions and frames are coalesced latest-wins.
KIND_METRICS = "metrics"
KIND_DECISION = "decision"
KIND_FRAME = "frame"
KIND_CONTROL = "control"


def stream_envelope(training_session_id: str, items) -> dict:
    return {"type": "stream.items", "training_session_id": training_session_id, "items": items}


def publish_stream(training_session_id: str, items: list[tuple[str, str | bytes]]) -> None:
    """Send already-serialized stream items ``(kind, text-or-bytes)`` to the session's group."""
    if not items:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            session_group_name(training_session_id), stream_envelope(training_session_id, items)
        )
    except Exception:
        # Persisted points are safe in the history; spectators backfill from it.
        logger.exception("could not publish %d item(s) for %s", len(items), training_session_id)
        channel_layer_publish_failed()


async def apublish_stream(training_session_id: str, items: list[tuple[str, str | bytes]]) -> None:
    if not items:
        return
    layer = get_channel_layer()
    try:
        await layer.group_send(session_group_name(training_session_id), stream_envelope(training_session_id, items))
    except Exception:
        logger.exception("could not publish %d item(s) for %s", len(items), training_session_id)
        channel_layer_publish_failed()


def metric_items(points: list[dict]) -> list[tuple[str, str]]:
    """Serialize a batch once: each point's ``training_metrics``, then one ``graph_update``
    carrying the graph entries of every point in the batch, then the points' decisions.

    One ``graph_update`` a batch, not one a point: its ``graphs`` list holds entries of any
    number of points (each with its own timestamp and episode), and a spectator's message
    count, the fan-out's cost, falls by almost half for a trainer that sends batches.
    """
    items = []
    graphs = []  # each point's entries, serialized at once (a batch's dicts never pile up)
    decisions = []
    for point in points:
        items.append((KIND_METRICS, _dumps(training_metrics(point))))
        entries = graph_points(point)
        if entries:
            graphs.append(orjson.dumps(entries)[1:-1])
        decision = point.get("decision") or {}
        # As for a decision sent on its own: action probabilities or Q-values make one.
        if decision.get("action_probabilities") is not None or decision.get("q_values") is not None:
            decisions.append((KIND_DECISION, _dumps(bot_decision(decision))))
    if graphs:
        items.append((KIND_METRICS, (b'{"type":"graph_update","graphs":[' + b",".join(graphs) + b"]}").decode()))
    return items + decisions


def decision_items(decisions: list[dict]) -> list[tuple[str, str]]:
    return [(KIND_DECISION, _dumps(bot_decision(decision))) for decision in decisions]


def control_item(message: dict) -> tuple[str, str]:
    return (KIND_CONTROL, _dumps(message))


def publish_stream_after_commit(training_session_id: str, items) -> None:
    transaction.on_commit(lambda: publish_stream(training_session_id, items))
