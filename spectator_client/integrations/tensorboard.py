"""A TensorBoard-style writer that streams to a Spectator server: change one import line.

    # from torch.utils.tensorboard import SummaryWriter
    from spectator_client.integrations.tensorboard import SummaryWriter

    writer = SummaryWriter(training_session_id="cartpole-dqn")
    writer.add_scalar("charts/episodic_return", 42.0, global_step)

Scalars logged with the same step become one metric point whose ``episode`` is the step. Tags
whose last part names a MetricsData field (``episodic_return``, ``loss``, ``epsilon``,
``learning_rate``, ``SPS``…, see ``TAG_FIELDS``) fill that field; every other tag is a custom
scalar under its full name, which gets its own graph. A point goes out when a scalar with
another step arrives, on ``flush()`` and ``close()``. ``add_image`` sends a frame; the other
``add_*`` methods of TensorBoard's writer are accepted and ignored, so scripts run unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from spectator_client.integrations import RoomRequest, room_open, scalar_key, stream_open
from spectator_client.integrations.pacing import RateLimit
from spectator_client.models import MetricsData
from spectator_client.stream import SpectatorStream

logger = logging.getLogger("spectator_client")

# The last part of a tag (lower case, "-" and " " as "_") -> the MetricsData field it fills.
TAG_FIELDS = {
    **dict.fromkeys(
        ("reward", "episode_reward", "episodic_return", "return", "episode_return", "current_reward", "ep_rew"),
        "current_reward",
    ),
    **dict.fromkeys(
        ("average_reward", "mean_reward", "avg_reward", "reward_mean", "ep_rew_mean", "average_return", "mean_return"),
        "average_reward",
    ),
    **dict.fromkeys(("best_reward", "max_reward", "best_return"), "best_reward"),
    **dict.fromkeys(("episode_length", "episodic_length", "ep_len", "length"), "episode_length"),
    **dict.fromkeys(("win_rate", "success_rate"), "win_rate"),
    **dict.fromkeys(("loss", "td_loss", "total_loss", "loss_value"), "loss_value"),
    **dict.fromkeys(("learning_rate", "lr"), "learning_rate"),
    **dict.fromkeys(("epsilon", "exploration_rate", "eps"), "epsilon"),
    **dict.fromkeys(("sps", "fps", "steps_per_second", "actions_per_second"), "actions_per_second"),
    **dict.fromkeys(("generation", "model_generation"), "model_generation"),
    "total_episodes": "total_episodes",
}
INT_FIELDS = {"episode_length", "model_generation", "total_episodes"}
NON_NEGATIVE_FIELDS = {"learning_rate", "actions_per_second"}
_SEPARATORS = re.compile(r"[\s-]+")


def tag_field(tag: str) -> str | None:
    """The MetricsData field a tag fills (``charts/episodic_return`` -> ``current_reward``), if any."""
    return TAG_FIELDS.get(_SEPARATORS.sub("_", tag.rsplit("/", 1)[-1].strip().lower()))


class SummaryWriter:
    """Stream TensorBoard-style scalars and images; never blocks the training step.

    ``log_dir`` only names the run: the training session id is ``training_session_id``, or one
    made from the folder's name. ``tag_fields`` adds or overrides tag-to-field mappings
    (``{"charts/score": "current_reward"}``). Other keyword arguments go to the
    ``SpectatorStream`` (``server_url``, ``api_token``, ``algorithm``…).
    """

    def __init__(
        self,
        log_dir: str | None = None,
        comment: str = "",
        *args: Any,
        training_session_id: str | None = None,
        stream: SpectatorStream | None = None,
        room: RoomRequest = None,
        algorithm: str = "",
        tag_fields: dict[str, str] | None = None,
        image_hz: float = 10.0,
        **stream_options: Any,
    ):
        name = (Path(log_dir).name if log_dir else "") or f"tensorboard{comment}"
        self.spectator, self._owns_stream = stream_open(
            stream, training_session_id, default_name=name, algorithm=algorithm or None, **stream_options
        )
        self.log_dir = log_dir
        self.algorithm = algorithm
        self.tag_fields = dict(tag_fields or {})
        self.room = room_open(self.spectator, room, name=name, algorithm=algorithm or None)
        self._images = RateLimit(image_hz)
        self._step: int | None = None
        self._fields: dict[str, Any] = {}
        self._extra: dict[str, float] = {}
        self._timestamp: float | None = None
        self._closed = False

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_logdir(self) -> str | None:
        return self.log_dir

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """Record one scalar for ``global_step`` (the last step when omitted); returns at once."""
        value = _number(scalar_value)
        if value is None:
            return
        self._at_step(global_step, walltime)
        field = self.tag_fields.get(tag) or tag_field(tag)
        if field in INT_FIELDS:
            self._fields[field] = int(round(value))
        elif field == "win_rate" and not 0.0 <= value <= 1.0:
            self._extra[scalar_key(tag)] = value
        elif field in NON_NEGATIVE_FIELDS and value < 0:
            self._extra[scalar_key(tag)] = value
        elif field:
            self._fields[field] = value
        else:
            self._extra[scalar_key(tag)] = value

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Record several scalars as ``main_tag/<name>``."""
        for name, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}/{name}", value, global_step, walltime)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Send an image as a game frame (at most ``image_hz`` a second), like TensorBoard's ``add_image``."""
        if not self._images.ready():
            return
        from spectator_client.integrations.images import encode_png, frame_shrink

        image = _to_hwc(img_tensor, dataformats)
        step = self._step if global_step is None else int(global_step)
        self.spectator.log_frame(encode_png(frame_shrink(image, 640)), "image/png", episode=step, step=step)

    def flush(self) -> None:
        """Send the scalars recorded for the current step now (without waiting for the network)."""
        self._point_send()

    def close(self) -> None:
        """Send what is recorded and, when the writer opened its own stream, close it (flushing it)."""
        if self._closed:
            return
        self._closed = True
        self._point_send()
        if self._owns_stream:
            self.spectator.close()

    def __getattr__(self, name: str) -> Any:
        # add_histogram, add_graph, add_hparams, add_text…: accepted, not streamed.
        if name.startswith("add_"):
            return _ignored
        raise AttributeError(name)

    def _at_step(self, global_step: int | None, walltime: float | None) -> None:
        step = self._step if global_step is None else int(global_step)
        if step is None:
            step = 0
        if step != self._step:
            self._point_send()
            self._step = step
        if self._timestamp is None:
            self._timestamp = walltime if walltime is not None else time.time()

    def _point_send(self) -> None:
        if not self._fields and not self._extra:
            return
        self.spectator.log_metrics(
            MetricsData(
                timestamp=self._timestamp or time.time(),
                episode=max(self._step or 0, 0),
                algorithm=self.algorithm,
                extra=self._extra,
                **self._fields,
            )
        )
        self._fields, self._extra, self._timestamp = {}, {}, None


def _ignored(*args: Any, **kwargs: Any) -> None:
    return None


def _number(value: Any) -> float | None:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _to_hwc(image: Any, dataformats: str) -> Any:
    import numpy as np

    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    pixels = np.asarray(image)
    formats = dataformats.upper()
    if formats == "HW":
        return pixels
    if formats == "CHW":
        return np.transpose(pixels, (1, 2, 0))
    if formats == "HWC":
        return pixels
    raise ValueError(f"dataformats must be CHW, HWC or HW, got {dataformats!r}.")
