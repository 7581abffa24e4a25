from django.contrib import admin

from metrics.models import TrainingSession
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
