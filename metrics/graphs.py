"""The performance graphs: their configuration and the data points each metric point adds."""

DEFAULT_MAX_POINTS = 1000

DEFAULT_GRAPHS = (
    {
        "graph_id": "reward_progress",
        "title": "Reward progress",
        "y_label": "Reward",
        "metrics": ["current_reward", "average_reward", "best_reward"],
    },
    {"graph_id": "win_rate", "title": "Win rate", "y_label": "Win rate", "metrics": ["win_rate"]},
    {"graph_id": "episode_length", "title": "Episode length", "y_label": "Steps", "metrics": ["episode_length"]},
    {
        "graph_id": "learning_metrics",
        "title": "Learning metrics",
        "y_label": "Value",
        "metrics": ["loss_value", "learning_rate", "epsilon"],
    },
    {
        "graph_id": "performance_stats",
        "title": "Performance",
        "y_label": "Per second",
        "metrics": ["actions_per_second", "frames_per_second"],
    },
)
CUSTOM_GRAPH_PREFIX = "custom:"


def graph_config(extra_keys=()) -> list[dict]:
    """The five seed graphs, then one graph per custom scalar."""
    graphs = [{**graph, "max_points": DEFAULT_MAX_POINTS} for graph in DEFAULT_GRAPHS]
    for key in extra_keys:
        graphs.append(
            {
                "graph_id": f"{CUSTOM_GRAPH_PREFIX}{key}",
                "title": key,
                "y_label": key,
                "metrics": [key],
                "max_points": DEFAULT_MAX_POINTS,
            }
        )
    return graphs


_GRAPH_METRICS = tuple((graph["graph_id"], tuple(graph["metrics"])) for graph in DEFAULT_GRAPHS)


def graph_points(point: dict) -> list[dict]:
    """The ``graph_update`` entries one metric point adds (graphs with no value are left out)."""
    timestamp = point["timestamp"]
    episode = point["episode"]
    get = point.get
    out = []
    for graph_id, names in _GRAPH_METRICS:
        values = {}
        for name in names:
            value = get(name)
            if value is not None:
                values[name] = value
        if values:
            out.append({"graph_id": graph_id, "timestamp": timestamp, "episode": episode, "data_points": values})
    for key, value in (get("extra") or {}).items():
        out.append(
            {
                "graph_id": f"{CUSTOM_GRAPH_PREFIX}{key}",
                "timestamp": timestamp,
                "episode": episode,
                "data_points": {key: value},
            }
        )
    return out
