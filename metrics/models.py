from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

training_session_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    "Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
)


class TrainingSession(models.Model):
    """One training run that streams metrics; rooms let people watch it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CLOSED = "closed", "Closed"

    id = models.CharField(primary_key=True, max_length=64, validators=[training_session_id_validator])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_sessions")
    name = models.CharField(max_length=200, blank=True)
    algorithm = models.CharField(max_length=100, blank=True)
    total_episodes = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # Names of the custom scalars (MetricsData.extra) seen so far: each gets a graph.
    extra_keys = models.JSONField(default=list, blank=True)
    # Trend analysis of current_reward (metrics.trends), kept up to date by ingest so a batch
    # never re-reads the history: the best reward so far, the plateau the reward is on (if
    # any, since the episode of its last real improvement), and the detector's running state.
    best_reward = models.FloatField(null=True, blank=True)
    best_reward_episode = models.BigIntegerField(null=True, blank=True)
    plateau_since_episode = models.BigIntegerField(null=True, blank=True)
    trend = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self):
        return self.name or self.id

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.RUNNING, self.Status.PAUSED)


class MetricPoint(models.Model):
    """One accepted MetricsData point of a training session's history.

    ``(stream, seq)`` is the client's identity for the point: a retried batch carries the same
    pairs and is not stored twice.
    """

    # The seed's MetricsData scalar fields, in the order spectators and exports see them.
    METRICS_DATA_FIELDS = (
        "timestamp",
        "episode",
        "total_episodes",
        "current_reward",
        "average_reward",
        "best_reward",
        "episode_length",
        "win_rate",
        "loss_value",
        "learning_rate",
        "epsilon",
        "model_generation",
        "algorithm",
        "training_time_elapsed",
        "actions_per_second",
        "frames_per_second",
        "memory_usage_mb",
    )

    # Indexed with ``id`` (Meta.indexes), which serves the foreign key as well.
    training_session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="metric_points", db_index=False
    )
    stream = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    timestamp = models.FloatField(help_text="Seconds since the epoch, as the trainer reported it.")
    episode = models.BigIntegerField()
    total_episodes = models.BigIntegerField(null=True, blank=True)
    current_reward = models.FloatField(null=True, blank=True)
    average_reward = models.FloatField(null=True, blank=True)
    best_reward = models.FloatField(null=True, blank=True)
    episode_length = models.BigIntegerField(null=True, blank=True)
    win_rate = models.FloatField(null=True, blank=True)
    loss_value = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(null=True, blank=True)
    epsilon = models.FloatField(null=True, blank=True)
    model_generation = models.BigIntegerField(null=True, blank=True)
    algorithm = models.CharField(max_length=100, blank=True)
    training_time_elapsed = models.FloatField(null=True, blank=True)
    actions_per_second = models.FloatField(null=True, blank=True)
    frames_per_second = models.FloatField(null=True, blank=True)
    memory_usage_mb = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    # Decision fields that came inside a MetricsData (action probabilities, values, action).
    decision = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["training_session", "id"]
        constraints = [
            models.UniqueConstraint(fields=["training_session", "stream", "seq"], name="metric_point_unique_seq")
        ]
        indexes = [
            # A session's points in stored order (history, backfill, exports) without a sort,
            # whatever else the table holds.
            models.Index(fields=["training_session", "id"]),
            models.Index(fields=["training_session", "episode"]),
            models.Index(fields=["training_session", "timestamp"]),
        ]

    def __str__(self):
        return f"{self.training_session_id} #{self.episode} ({self.stream}:{self.seq})"


class RecordingPolicy(models.Model):
    """What a training session records for replay and how much of it is kept.

    A session without one records with the server's defaults (``SPECTATOR_RECORDING_*``).
    """

    class Mode(models.TextChoices):
        ALL = "all", "Every episode"
        EVERY_NTH = "every_nth", "Every Nth episode"
        BEST_WORST = "best_worst", "The K best and K worst episodes"
        OFF = "off", "Nothing"

    training_session = models.OneToOneField(
        TrainingSession, on_delete=models.CASCADE, primary_key=True, related_name="recording_policy"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ALL)
    every_n = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)], help_text="every_nth: N."
    )
    keep = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)], help_text="best_worst: K."
    )
    max_bytes = models.BigIntegerField(validators=[MinValueValidator(0), MaxValueValidator(2**50)])
    max_age_hours = models.FloatField(validators=[MinValueValidator(0.01), MaxValueValidator(24 * 365 * 10)])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.training_session_id}: {self.mode}"


class RecordedEpisode(models.Model):
    """One episode's recorded decisions and frames (a file, ``metrics.recordings``).

    ``discarded_at`` marks an episode dropped by sampling or retention: its file is gone and
    late records for it are not stored again. The counters grow as records arrive.
    """

    training_session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="recorded_episodes", db_index=False
    )
    episode = models.BigIntegerField()
    decisions = models.PositiveIntegerField(default=0)
    frames = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    first_step = models.BigIntegerField(null=True, blank=True)
    last_step = models.BigIntegerField(null=True, blank=True)
    # Seconds since the epoch, as the trainer stamped its first and last record.
    started_at = models.FloatField(null=True, blank=True)
    ended_at = models.FloatField(null=True, blank=True)
    # The episode's current_reward, from its metric point (best_worst ranks by it).
    reward = models.FloatField(null=True, blank=True)
    # The episode's file, relative to SPECTATOR_RECORDINGS_DIR.
    path = models.CharField(max_length=200)
    discarded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["training_session", "-episode"]
        constraints = [
            models.UniqueConstraint(fields=["training_session", "episode"], name="recorded_episode_unique"),
        ]
        indexes = [
            models.Index(fields=["training_session", "discarded_at", "reward"]),
            models.Index(fields=["updated_at"]),
        ]

    def __str__(self):
        return f"{self.training_session_id} episode {self.episode}"

    @property
    def steps(self) -> int:
        """Steps the recording spans (first to last step seen), or its decisions when unnumbered."""
        if self.first_step is None or self.last_step is None:
            return self.decisions
        return self.last_step - self.first_step + 1
