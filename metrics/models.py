from django.conf import settings
from django.core.validators import RegexValidator
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
