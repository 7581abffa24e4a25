from django.contrib import admin

from metrics.models import RecordedEpisode, RecordingPolicy, TrainingSession
from metrics.recording_services import recording_episode_discard
from rooms.models import Room


class RoomInline(admin.TabularInline):
    model = Room
    fields = ["code", "access_level", "status", "created_at", "expires_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TrainingSession)
class TrainingSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "algorithm", "status", "created_at"]
    list_filter = ["status", "algorithm"]
    search_fields = ["id", "name", "owner__username"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RoomInline]


@admin.register(RecordingPolicy)
class RecordingPolicyAdmin(admin.ModelAdmin):
    list_display = ["training_session", "mode", "every_n", "keep", "max_bytes", "max_age_hours", "updated_at"]
    list_filter = ["mode"]
    search_fields = ["training_session__id", "training_session__name"]
    raw_id_fields = ["training_session"]


@admin.register(RecordedEpisode)
class RecordedEpisodeAdmin(admin.ModelAdmin):
    list_display = [
        "training_session",
        "episode",
        "decisions",
        "frames",
        "bytes",
        "reward",
        "discarded_at",
        "updated_at",
    ]
    list_filter = [("discarded_at", admin.EmptyFieldListFilter)]
    search_fields = ["training_session__id"]
    readonly_fields = [f.name for f in RecordedEpisode._meta.fields]
    actions = ["discard"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting goes through the service (the file goes too): the "Discard" action.
        return False

    @admin.action(description="Discard the selected recordings (delete their files)")
    def discard(self, request, queryset):
        done = sum(
            recording_episode_discard(recorded_episode=row, actor=request.user)
            for row in queryset.select_related("training_session").filter(discarded_at__isnull=True)
        )
        self.message_user(request, f"{done} recording(s) discarded.")
