"""Page forms: parse what a person typed; the services decide and validate the rest."""

from django import forms
from django.conf import settings

from rooms.models import AccessLevel

ACCESS_LEVEL_HELP = {
    AccessLevel.PUBLIC: "Anyone with the code can watch; listed in the lobby.",
    AccessLevel.PASSWORD: "Anyone with the code and the password; listed in the lobby.",
    AccessLevel.INVITE_ONLY: "Signed-in users you invite by username.",
    AccessLevel.PRIVATE: "Only you and the users you allow; never listed, looks missing to others.",
}


class RoomCreateForm(forms.Form):
    training_session = forms.ChoiceField(label="Training session")
    name = forms.CharField(label="Room name", max_length=200, required=False)
    access_level = forms.ChoiceField(
        label="Who may watch", choices=AccessLevel.choices, initial=AccessLevel.PUBLIC, widget=forms.RadioSelect
    )
    password = forms.CharField(
        label="Password",
        required=False,
        min_length=4,
        max_length=128,
        help_text="Leave empty to generate a strong one. It is shown once, after the room is created.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    allowed_users = forms.CharField(
        label="Allowed users",
        required=False,
        help_text="Usernames, separated by commas or spaces (invite-only and private rooms).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    max_spectators = forms.IntegerField(label="Seats", min_value=1, max_value=100_000, initial=10)
    require_approval = forms.BooleanField(
        label="Approve each spectator", required=False, help_text="Visitors wait until you let them in."
    )
    auto_approve_timeout = forms.IntegerField(
        label="Auto-approve after (seconds)",
        min_value=0,
        max_value=86_400,
        initial=0,
        help_text="0 = never: requests wait for you.",
    )
    duration_hours = forms.FloatField(
        label="Expires after (hours)", min_value=0.05, max_value=settings.SPECTATOR_MAX_ROOM_HOURS, initial=24
    )
    enable_metrics_overlay = forms.BooleanField(label="Metrics overlay", required=False, initial=True)
    enable_performance_graphs = forms.BooleanField(label="Performance graphs", required=False, initial=True)
    enable_decision_visualization = forms.BooleanField(label="Decision panel", required=False, initial=True)

    def __init__(self, *args, training_sessions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["training_session"].choices = [
            (session.pk, f"{session.name or session.pk} ({session.pk})" if session.name else session.pk)
            for session in training_sessions
        ]

    def clean_allowed_users(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_users") or ""
        return [name for name in raw.replace(",", " ").split() if name]

    def access_level_choices(self):
        """The radio choices with their one-line explanations, for the template."""
        return [
            (value, label, ACCESS_LEVEL_HELP[value], str(self["access_level"].value()) == value)
            for value, label in AccessLevel.choices
        ]
